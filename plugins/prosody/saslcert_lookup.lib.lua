-- saslcert_lookup: asking the component whether a client certificate may
-- log in (SASL EXTERNAL; docs/PLUGIN-PROTOCOL.md, "lookup"): the lookup IQ,
-- the per-address limit on lookups, the prefetch at stream features and the
-- checks on the component's answer. Loaded with
-- module:require("saslcert_lookup"); returns init(ctx), which adds to ctx:
--   pending_lookups (session -> lookup state, weak keys),
--   lookup_allowed(session), ask_component(session, cert, fingerprint, authzid),
--   prefetch(session, cert)
-- Options (from ctx.config): component, timeout, cache_size, lookup_burst,
-- lookup_rate, prefetch.

local st = require "util.stanza";
local async = require "util.async";
local jid_util = require "util.jid";
local cache = require "util.cache";
local throttle = require "util.throttle";
local net_pton = require "util.net".pton;
local gettime = require "util.time".now;
local util = module:require("saslcert_util");

local xmlns_plugin = util.xmlns_plugin;
local cert_der_base64, cert_fingerprint = util.cert_der_base64, util.cert_fingerprint;
local error_from_reply, still_unauthenticated = util.error_from_reply, util.still_unauthenticated;
local sasl_conditions, revoked_text = util.sasl_conditions, util.revoked_text;

return function (ctx)
local config, state = ctx.config, ctx.state;
local component, timeout = config.component, config.timeout;
local lookup_burst, lookup_rate = config.lookup_burst, config.lookup_rate;

-- Lookups in flight: session -> { fingerprint = ..., revoked = { [jid] = true } }.
-- A revocation that arrives while the component's grant is on its way
-- marks them, so that the grant is not used.
local pending_lookups = setmetatable({}, util.weak_keys);

-- From saslcert_link and saslcert_cache (initialised before this part).
local next_id, request, round_trip = ctx.next_id, ctx.request, ctx.round_trip;
local link_alive, caching, snapshot = ctx.link_alive, ctx.caching, ctx.snapshot;
local may_remember, login_cache = ctx.may_remember, ctx.login_cache;
local remember_refusal, remembered_refusal = ctx.remember_refusal, ctx.remembered_refusal;
-- From saslcert_login (initialised after this part).
local function fail(...) return ctx.fail(...); end

-- Lookups per client address: a token bucket of saslcert_lookup_burst
-- tokens refilled at saslcert_lookup_rate per second, for every lookup sent
-- (prefetch included; remembered answers cost nothing). IPv6 addresses
-- share the bucket of their /64. At most saslcert_cache_size addresses are
-- tracked; the oldest is forgotten first.
local too_many_lookups = "Too many certificate logins from your address; try again later";
local lookup_buckets = cache.new(config.cache_size);

local function source_of(session)
	local ip = session.ip;
	local packed = ip and net_pton(ip);
	if not packed then return ip or ""; end
	if #packed == 16 and packed:sub(1, 12) ~= "\0\0\0\0\0\0\0\0\0\0\255\255" then
		return packed:sub(1, 8); -- the /64
	end
	return packed:sub(-4);
end

-- Takes a token for one lookup from session's address; false if none is left.
local function lookup_allowed(session)
	local source = source_of(session);
	local bucket = lookup_buckets:get(source);
	if not bucket then
		bucket = throttle.create(lookup_burst, lookup_burst / lookup_rate);
		lookup_buckets:set(source, bucket);
	end
	return (bucket:poll(1));
end

-- The lookup IQ for cert: by fingerprint when the component accepts that
-- (a few bytes instead of the whole certificate to encode, send and parse),
-- else with the base64 DER. Returns the IQ and whether it names the
-- certificate by fingerprint, or nil if the certificate cannot be read.
local function lookup_iq(cert, fingerprint, authzid, whole)
	local lookup = st.iq({ type = "get", from = module.host, to = component, id = next_id() })
		:tag("lookup", { xmlns = xmlns_plugin, authzid = authzid ~= "" and authzid or nil });
	if not whole and state.by_fingerprint and link_alive() then
		lookup.tags[1].attr.fingerprint = fingerprint;
		return lookup, true;
	end
	local der = cert_der_base64(cert);
	if not der then return nil; end
	return lookup:text_tag("x509cert", der), false;
end

-- Whether reply says the component wants the whole certificate (the lookup
-- named an unstored one by fingerprint and trusted CAs may still accept it).
local function wants_whole(reply)
	if not reply or reply.attr.type ~= "error" then return false; end
	local err_type, condition = reply:get_error();
	return err_type == "modify" and condition == "item-not-found";
end

-- The prefetched answer for session, if it may stand in for asking now:
-- reply, origin, link and epoch as a round trip gives them; or nil, and
-- then true as 5th value if the certificate must be sent whole, or true as
-- 6th if the component did not answer in time. A prefetch is for the
-- authzid "" only, is used at most once, only if nothing was forgotten since
-- it was sent (so no change can have overtaken it) and only within
-- saslcert_timeout of sending it; any other error is asked again.
local function take_prefetch(session, fingerprint, authzid)
	local p = session.saslcert_prefetch;
	if not p then return nil; end
	session.saslcert_prefetch = nil;
	if authzid ~= "" or p.fingerprint ~= fingerprint or p.epoch ~= state.epoch or gettime() - p.sent > timeout then
		return nil;
	end
	if not p.done then
		local wait, wake = async.waiter();
		p.wake = wake;
		wait();
		if p.epoch ~= state.epoch then return nil; end
	end
	local reply = p.reply;
	if reply == nil then
		-- No answer within saslcert_timeout: asking again would only
		-- double the wait.
		return nil, nil, nil, nil, nil, true;
	end
	if wants_whole(reply) then
		return nil, nil, nil, nil, true;
	end
	if reply.attr.type ~= "result" and select(1, error_from_reply(reply, nil)) ~= "auth" then
		return nil;
	end
	return reply, p.origin, p.link, p.epoch;
end

-- Asks the component whether cert may log in with authzid. Returns the grant
-- ({ account, node, resource, no_cert_management, expires, max_age }), or
-- nil and the value to return after the client has been answered with a
-- failure. Runs inside the session's async runner. The grant carries max_age
-- only if it may be remembered.
local function ask_component(session, cert, fingerprint, authzid)
	if not async.ready() then
		session.log("error", "SASL EXTERNAL outside an async runner; cannot ask %s", component);
		return nil, fail(session, "temporary-auth-failure");
	end
	local lookup_state = { fingerprint = fingerprint };
	local reply, origin, sent_link, sent_epoch, whole, timed_out = take_prefetch(session, fingerprint, authzid);
	if timed_out then
		session.log("debug", "Certificate lookup failed: no answer within saslcert_timeout");
		return nil, fail(session, "temporary-auth-failure");
	elseif reply then
		session.log("debug", "Certificate %s: prefetched answer", fingerprint);
	else
		repeat
			local iq, by_fp = lookup_iq(cert, fingerprint, authzid, whole);
			if not iq then
				session.log("warn", "Could not read the client certificate");
				return nil, fail(session, "temporary-auth-failure");
			end
			if not lookup_allowed(session) then
				session.log("info", "Certificate %s: too many lookups from %s", fingerprint, session.ip or "?");
				return nil, fail(session, "temporary-auth-failure", too_many_lookups);
			end
			session.log("debug", "Asking %s about certificate %s", component, fingerprint);
			pending_lookups[session] = lookup_state;
			sent_link, sent_epoch = snapshot();
			reply, origin = round_trip(iq);
			pending_lookups[session] = nil;
			local again = by_fp and wants_whole(reply);
			whole = true;
		until not again
	end

	if not still_unauthenticated(session) then
		(session.log or module._log)("debug", "Session went away or changed during the certificate lookup");
		return nil, true;
	end

	if not reply or reply.attr.type ~= "result" then
		local err_type, sasl_cond, text = error_from_reply(reply, nil);
		if err_type == "auth" and reply then
			if not sasl_conditions:contains(sasl_cond or "") then
				sasl_cond = "not-authorized";
			end
			session.log("debug", "Component refused certificate %s: %s", fingerprint, sasl_cond);
			remember_refusal(fingerprint, authzid, sasl_cond, text, sent_link, sent_epoch, origin);
			return nil, fail(session, sasl_cond, text);
		end
		session.log("debug", "Certificate lookup failed (%s): %s", err_type or "?",
			text or (reply and "error" or "no answer within saslcert_timeout"));
		return nil, fail(session, "temporary-auth-failure");
	end

	local answer = reply:get_child("lookup", xmlns_plugin);
	local answer_jid = answer and answer.attr.jid and jid_util.prep(answer.attr.jid);
	if not answer_jid then
		session.log("warn", "Component answered a lookup without a valid jid");
		return nil, fail(session, "temporary-auth-failure");
	end
	if answer_jid ~= answer.attr.jid then
		-- One canonical form end to end: a JID that stringprep changes (e.g.
		-- straße -> strasse) names another account here than the one the
		-- component decided about.
		session.log("warn", "Component answered a lookup with %q, which is %q here: refused",
			answer.attr.jid, answer_jid);
		return nil, fail(session, "not-authorized");
	end
	local node, host, res = jid_util.split(answer_jid);
	if not node or res then
		session.log("warn", "Component answered a lookup with %s, not a bare account JID", answer_jid);
		return nil, fail(session, "temporary-auth-failure");
	end
	if host ~= module.host then
		session.log("warn", "Component answered a lookup with %s, not an account of %s", answer_jid, module.host);
		return nil, fail(session, "not-authorized");
	end
	if lookup_state.revoked and lookup_state.revoked[answer_jid] then
		session.log("debug", "Certificate %s was revoked during the lookup", fingerprint);
		return nil, fail(session, "not-authorized", revoked_text);
	end
	if not answer.attr.fingerprint or answer.attr.fingerprint:lower() ~= fingerprint then
		session.log("warn", "Component answered a lookup for another certificate");
		return nil, fail(session, "temporary-auth-failure");
	end
	if authzid ~= "" then
		-- Defence in depth: the component must have granted exactly the
		-- requested identity (Prosody's stringprep of it).
		local want = jid_util.prep(authzid);
		if want ~= answer_jid then
			session.log("warn", "Component granted %s for another authzid", answer_jid);
			return nil, fail(session, "invalid-authzid");
		end
	end
	local forced_resource;
	if answer.attr.resource and answer.attr.resource ~= "" then
		forced_resource = answer.attr.resource;
		local full = jid_util.prep(answer_jid .. "/" .. forced_resource);
		if not full then
			session.log("warn", "Component answered an invalid resource");
			return nil, fail(session, "temporary-auth-failure");
		end
		if jid_util.resource(full) ~= forced_resource then
			session.log("warn", "Component answered a lookup with the resource %q, which is %q here: refused",
				forced_resource, jid_util.resource(full));
			return nil, fail(session, "not-authorized");
		end
	end
	-- Unknown is not "may manage": the answer must say.
	local ncm = answer.attr["no-cert-management"];
	if ncm ~= "true" and ncm ~= "false" then
		session.log("warn", "Component answered a lookup without no-cert-management='true|false'");
		return nil, fail(session, "temporary-auth-failure");
	end
	local grant = {
		account = answer_jid;
		node = node;
		resource = forced_resource;
		no_cert_management = answer.attr["no-cert-management"] == "true";
	};
	local max_age = tonumber(answer.attr["max-age"]);
	if max_age and max_age >= 1 and may_remember(sent_link, sent_epoch, origin) then
		max_age = math.min(math.floor(max_age), state.cache_ttl);
		grant.max_age = max_age;
		grant.expires = gettime() + max_age;
	end
	return grant;
end

-- Starts the lookup for the authzid "" (what clients send) as soon as the
-- client certificate is known, when stream features are offered after TLS:
-- the answer is usually back by the time the client's <auth/> arrives, so
-- the round trip to the component adds no latency to the login. Skipped when
-- the cache already has the answer or the certificate cannot be read.
local prefetching = config.prefetch;
local function prefetch(session, cert)
	if not prefetching or session.saslcert_prefetch then return; end
	local fingerprint = cert_fingerprint(cert);
	if not fingerprint or (caching() and login_cache:get(fingerprint .. "\0")) or remembered_refusal(fingerprint .. "\0")
		or not lookup_allowed(session) then
		return;
	end
	local iq = lookup_iq(cert, fingerprint, "");
	if not iq then return; end
	local link, sent_epoch = snapshot();
	local p = { fingerprint = fingerprint, sent = gettime(), link = link, epoch = sent_epoch };
	session.saslcert_prefetch = p;
	request(iq, function (reply, origin)
		p.reply, p.origin, p.done = reply, origin, true;
		if p.wake then p.wake(); end
	end);
end

ctx.pending_lookups = pending_lookups;
ctx.lookup_allowed = lookup_allowed;
ctx.ask_component = ask_component;
ctx.prefetch = prefetch;
end
