-- saslcert_login: SASL EXTERNAL for clients that present a certificate
-- (XEP-0178): offers the mechanism, reads <auth/> and <response/>, asks
-- saslcert_lookup or the cache, and logs the client in as the account the
-- component names, with the resource a full-JID certificate forces.
-- Loaded with module:require("saslcert_login"); returns init(ctx), which
-- adds ctx.fail(session, condition, text) and, when ctx.config.enabled,
-- hooks the stream features, the SASL stanzas and resource binding.
-- Options (from ctx.config): enabled, max_failures.

local st = require "util.stanza";
local encodings = require "util.encodings";
local sm_make_authenticated = require "core.sessionmanager".make_authenticated;
local usermanager = require "core.usermanager";
local gettime = require "util.time".now;
local util = module:require("saslcert_util");

local utf8_valid = encodings.utf8.valid;
local xmlns_sasl, max_authzid = util.xmlns_sasl, util.max_authzid;
local peer_certificate, cert_fingerprint = util.peer_certificate, util.cert_fingerprint;
local sasl_failure, decode_sasl_data = util.sasl_failure, util.decode_sasl_data;
local still_unauthenticated = util.still_unauthenticated;

return function (ctx)
local config = ctx.config;
local cert_sessions = ctx.cert_sessions;
local caching, login_cache, remembered_refusal = ctx.caching, ctx.login_cache, ctx.remembered_refusal;
local ask_component, prefetch = ctx.ask_component, ctx.prefetch;

-- Failed EXTERNAL attempts a connection may make: the one that reaches
-- the limit is answered and the stream closed (policy-violation), so that
-- one connection cannot keep the component busy.
local max_failures = config.max_failures;
local too_many_failures = "Too many failed authentication attempts";

local function fail(session, condition, text)
	session.saslcert_await_response = nil;
	module:fire_event("authentication-failure", { session = session, condition = condition, text = text });
	session.send(sasl_failure(condition, text));
	local failures = (session.saslcert_failures or 0) + 1;
	session.saslcert_failures = failures;
	if failures >= max_failures and not session.destroyed and session.close then
		session.log("info", "Closing the stream after %d failed SASL EXTERNAL attempts", failures);
		session:close({ condition = "policy-violation", text = too_many_failures });
	end
	return true;
end

-- Asks the component about the certificate of session and answers the
-- client. Runs inside the session's async runner.
local function do_external(session, cert, message)
	local authzid, bad = decode_sasl_data(message);
	if authzid == nil then
		return fail(session, bad or "incorrect-encoding",
			bad == "malformed-request" and "The SASL data is too long" or nil);
	end
	if #authzid > max_authzid then
		return fail(session, "invalid-authzid", "The authorization identity is too long");
	end
	if authzid ~= "" and (not utf8_valid(authzid) or authzid:find("[\0-\31\127]")) then
		return fail(session, "invalid-authzid");
	end

	local fingerprint = cert_fingerprint(cert);
	if not fingerprint then
		session.log("warn", "Could not read the client certificate");
		return fail(session, "temporary-auth-failure");
	end

	local key = fingerprint .. "\0" .. authzid;
	local refusal = remembered_refusal(key);
	if refusal then
		session.log("debug", "Certificate %s: remembered refusal %s", fingerprint, refusal.condition);
		return fail(session, refusal.condition, refusal.text);
	end
	local grant = caching() and login_cache:get(key);
	if grant and grant.expires <= gettime() then
		login_cache:set(key, nil);
		grant = nil;
	end
	if grant then
		session.log("debug", "Certificate %s: remembered answer %s", fingerprint, grant.account);
	else
		local ret;
		grant, ret = ask_component(session, cert, fingerprint, authzid);
		if not grant then return ret; end
		if grant.max_age then
			ctx.remember_login(key, grant);
		end
	end
	local answer_jid, node = grant.account, grant.node;

	-- A certificate outlives nothing: the account must still exist here (a
	-- deleted account's certificates are refused even if the component still
	-- has them).
	if not usermanager.user_exists(node, module.host) then
		session.log("debug", "Certificate %s names %s, which has no account here", fingerprint, answer_jid);
		return fail(session, "not-authorized");
	end
	local ok, auth_err = sm_make_authenticated(session, node);
	if not ok then
		session.log("warn", "Certificate accepted but the username is invalid: %s", auth_err);
		return fail(session, "not-authorized");
	end
	session.saslcert = {
		jid = answer_jid;
		fingerprint = fingerprint;
		resource = grant.resource;
		no_cert_management = grant.no_cert_management;
	};
	cert_sessions[session] = true;
	session.sasl_handler = nil;
	session.saslcert_await_response = nil;
	module:fire_event("authentication-success", { session = session });
	session.send(st.stanza("success", { xmlns = xmlns_sasl }));
	session:reset_stream();
	return true;
end

-- Runs do_external so that a Lua error still answers the client.
local function external(session, cert, message)
	local ok, ret = xpcall(do_external, debug.traceback, session, cert, message);
	if ok then return ret; end
	module:log("error", "SASL EXTERNAL failed: %s", ret);
	if still_unauthenticated(session) then
		return fail(session, "temporary-auth-failure");
	end
	return true;
end

if config.enabled then
	-- Offer EXTERNAL first (RFC 6120 §6.3.3) when a client certificate was
	-- presented. Runs after mod_saslauth has added <mechanisms/>.
	module:hook("stream-features", function (event)
		local session, features = event.origin, event.features;
		if session.type ~= "c2s_unauthed" or session.username or not session.secure then return; end
		local cert = peer_certificate(session);
		if not cert then return; end
		prefetch(session, cert);
		local mechanisms = features:get_child("mechanisms", xmlns_sasl);
		if not mechanisms then
			mechanisms = st.stanza("mechanisms", { xmlns = xmlns_sasl });
			features:add_child(mechanisms);
		end
		mechanisms:maptags(function (mech)
			if mech.name == "mechanism" and mech:get_text() == "EXTERNAL" then return nil; end
			return mech;
		end);
		local mech = st.stanza("mechanism", { xmlns = xmlns_sasl }):text("EXTERNAL");
		table.insert(mechanisms, 1, mech);
		table.insert(mechanisms.tags, 1, mech);
	end, -10);

	module:hook("stanza/urn:ietf:params:xml:ns:xmpp-sasl:auth", function (event)
		local session, stanza = event.origin, event.stanza;
		if session.type ~= "c2s_unauthed" then return; end
		session.saslcert_await_response = nil;
		if stanza.attr.mechanism ~= "EXTERNAL" then return; end
		-- A new negotiation replaces an unfinished one (as in mod_saslauth).
		session.sasl_handler = nil;
		if not session.secure then
			return fail(session, "encryption-required");
		end
		local cert = peer_certificate(session);
		if not cert then
			return fail(session, "not-authorized", "no client certificate was presented");
		end
		local text = stanza:get_text();
		if stanza[1] == nil then
			-- No initial response: ask for it with an empty challenge.
			session.saslcert_await_response = true;
			session.send(st.stanza("challenge", { xmlns = xmlns_sasl }):text("="));
			return true;
		end
		return external(session, cert, text);
	end, 10);

	module:hook("stanza/urn:ietf:params:xml:ns:xmpp-sasl:response", function (event)
		local session, stanza = event.origin, event.stanza;
		if not session.saslcert_await_response then return; end
		session.saslcert_await_response = nil;
		if session.type ~= "c2s_unauthed" then return; end
		local cert = peer_certificate(session);
		if not cert then
			return fail(session, "not-authorized", "no client certificate was presented");
		end
		return external(session, cert, stanza[1] and stanza:get_text() or nil);
	end, 10);

	module:hook("stanza/urn:ietf:params:xml:ns:xmpp-sasl:abort", function (event)
		local session = event.origin;
		if not session.saslcert_await_response then return; end
		session.saslcert_await_response = nil;
		session.send(sasl_failure("aborted"));
		return true;
	end, 10);

	-- Force the resource of a full-JID certificate. Low priority so that it
	-- has the last word; a conflict with a live session of that full JID is
	-- resolved by Prosody's conflict_resolve policy.
	module:hook("pre-resource-bind", function (event)
		local grant = event.session.saslcert;
		if grant and grant.resource then
			if event.resource ~= grant.resource then
				event.session.log("debug", "Forcing resource %q (client asked for %q)", grant.resource,
					event.resource or "");
			end
			event.resource = grant.resource;
		end
	end, -1000);
end

ctx.fail = fail;
end
