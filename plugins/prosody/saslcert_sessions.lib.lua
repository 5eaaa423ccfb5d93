-- saslcert_sessions: the certificate sessions of this host and what the
-- component says about them (docs/PLUGIN-PROTOCOL.md, "session notices",
-- "sessions", "revoked", "disabled", "changed"): batched bound/closed
-- notices, XEP-0198 resumption, the <sessions/> list the component asks for
-- on connect, and closing sessions whose certificate was revoked or
-- disabled. Loaded with module:require("saslcert_sessions"); returns
-- init(ctx), which adds ctx.cert_sessions (session -> true, weak keys) and
-- ctx.fp_sessions (fingerprint -> set of bound sessions) and hooks resource
-- binding, resumption and the component's plugin IQs.
-- Options (from ctx.config): component, notice_delay.

local st = require "util.stanza";
local jid_util = require "util.jid";
local util = module:require("saslcert_util");

local xmlns_plugin, weak_keys, revoked_text = util.xmlns_plugin, util.weak_keys, util.revoked_text;

return function (ctx)
local config = ctx.config;
local component = config.component;
local component_local, from_component = ctx.component_local, ctx.from_component;
local forget = ctx.forget;

-- Sessions that authenticated with a certificate (bound or not yet bound).
-- Weak keys: a destroyed session disappears by itself.
local cert_sessions = setmetatable({}, weak_keys);

-- After a module reload, pick up the certificate sessions already bound.
do
	local host = prosody.hosts[module.host];
	for _, user in pairs(host and host.sessions or {}) do
		for _, session in pairs(user.sessions or {}) do
			if session.saslcert then
				cert_sessions[session] = true;
			end
		end
	end
end

-- Bound certificate sessions by fingerprint, for the <users/> of <items/>.
local fp_sessions = {}; -- fingerprint -> set of sessions (weak keys)

local function fp_bound(session, fingerprint)
	local set_ = fp_sessions[fingerprint];
	if not set_ then
		set_ = setmetatable({}, weak_keys);
		fp_sessions[fingerprint] = set_;
	end
	set_[session] = true;
end

local function fp_unbound(session, fingerprint)
	local set_ = fp_sessions[fingerprint];
	if set_ then
		set_[session] = nil;
		if next(set_) == nil then fp_sessions[fingerprint] = nil; end
	end
end

for session in pairs(cert_sessions) do
	if session.saslcert and session.saslcert.bound then
		fp_bound(session, session.saslcert.fingerprint);
	end
end

-- Session notices are batched: one <message/> (no answer) carries every
-- notice of saslcert_notice_delay seconds (default 0.05), in order, so a
-- login costs no extra round trip. A notice lost while the component is
-- disconnected is repaired by the <sessions/> list it asks for on connect.
local notice_delay = config.notice_delay;
local notice_batch_max = 100;
local notice_queue = {};

local function flush_notices()
	if #notice_queue == 0 or not component then return; end
	if not component_local() then
		-- Not routed anywhere else; the <sessions/> query repairs the list.
		notice_queue = {};
		return;
	end
	local msg = st.message({ type = "normal", from = module.host, to = component })
		:tag("notices", { xmlns = xmlns_plugin });
	for _, n in ipairs(notice_queue) do
		msg:tag("session", n):up();
	end
	notice_queue = {};
	module:send(msg);
end

local function notify(event_name, full_jid, fingerprint)
	if not component then return; end
	notice_queue[#notice_queue + 1] = { event = event_name, jid = full_jid, fingerprint = fingerprint };
	if #notice_queue == 1 then
		module:add_timer(notice_delay, flush_notices);
	elseif #notice_queue >= notice_batch_max then
		flush_notices();
	end
end

module:hook("resource-bind", function (event)
	local session = event.session;
	local grant = session.saslcert;
	if grant and session.full_jid then
		grant.bound = true;
		fp_bound(session, grant.fingerprint);
		notify("bound", session.full_jid, grant.fingerprint);
	end
end);

module:hook("resource-unbind", function (event)
	local session = event.session;
	local grant = session.saslcert;
	if grant and grant.bound and session.full_jid then
		grant.bound = nil;
		cert_sessions[session] = nil;
		fp_unbound(session, grant.fingerprint);
		notify("closed", session.full_jid, grant.fingerprint);
	end
end);

-- XEP-0198 resumption moves the connection of the new session (which
-- authenticated) onto the resumed one and leaves the new one an empty
-- shell. What the new connection proved decides from then on: a
-- certificate login hands its grant (fingerprint, forced resource,
-- no-cert-management) to the resumed session, so that revoking that
-- certificate closes it for good (close revokes the resumption token:
-- no hibernation, no second resumption), and a forced resource other than
-- the resumed session's closes it. A password login resuming a certificate
-- session leaves the old grant in place (its restrictions stay).
module:hook("smacks-hibernation-end", function (event)
	local new, resumed = event.origin, event.resumed;
	local grant = new and new.saslcert;
	if not grant or not resumed or resumed == new then return; end
	new.saslcert = nil;
	cert_sessions[new] = nil;
	local old = resumed.saslcert;
	if old and old.bound then
		old.bound = nil;
		fp_unbound(resumed, old.fingerprint);
		if resumed.full_jid then notify("closed", resumed.full_jid, old.fingerprint); end
	end
	resumed.saslcert = grant;
	cert_sessions[resumed] = true;
	if grant.resource and resumed.resource ~= grant.resource then
		resumed.log("info", "Closing resumed session: its certificate may only use resource %q", grant.resource);
		cert_sessions[resumed] = nil;
		resumed:close({ condition = "policy-violation",
			text = "This client certificate may only use the resource " .. grant.resource });
		return;
	end
	if resumed.full_jid then
		grant.bound = true;
		fp_bound(resumed, grant.fingerprint);
		notify("bound", resumed.full_jid, grant.fingerprint);
	end
	resumed.log("debug", "Resumed by a login with certificate %s", grant.fingerprint);
end);

module:hook("iq-get/host/" .. xmlns_plugin .. ":sessions", function (event)
	if not from_component(event) then return true; end
	-- Sent by the component after each connect: a new connection starts
	-- with an empty cache, allowed for cache-ttl seconds per answer.
	local query = event.stanza.tags[1];
	local ttl = tonumber(query.attr["cache-ttl"]);
	local cache_ttl = (ttl and ttl >= 1) and math.min(math.floor(ttl), 86400) or 0;
	ctx.connected(event.origin, cache_ttl, query.attr.lookup == "fingerprint");
	module:log("debug", "Component %s connected; caching %s", component,
		cache_ttl > 0 and ("for " .. cache_ttl .. " s") or "off");
	local reply = st.reply(event.stanza):tag("sessions", { xmlns = xmlns_plugin });
	for session in pairs(cert_sessions) do
		local grant = session.saslcert;
		if grant and grant.bound and session.full_jid and not session.destroyed then
			reply:tag("session", { jid = session.full_jid, fingerprint = grant.fingerprint }):up();
		end
	end
	event.origin.send(reply);
	ctx.send_account_events(); -- what waited for the component
	return true;
end);

module:hook("iq-set/host/" .. xmlns_plugin .. ":revoked", function (event)
	if not from_component(event) then return true; end
	local stanza = event.stanza;
	local payload = stanza:get_child("revoked", xmlns_plugin);
	local account = payload.attr.jid and jid_util.prep(payload.attr.jid);
	local fingerprint = payload.attr.fingerprint and payload.attr.fingerprint:lower();
	local node, host, res;
	if account then
		node, host, res = jid_util.split(account);
	end
	if account and account ~= payload.attr.jid then
		-- The component never grants such a JID (one canonical form end to
		-- end); still close what the prepared account has open with this
		-- certificate: a revocation closes more, never less.
		module:log("warn", "Component revoked a certificate of %q, which is %q here", payload.attr.jid, account);
	end
	if not node or res or host ~= module.host or not fingerprint then
		event.origin.send(st.error_reply(stanza, "modify", "bad-request",
			"revoked needs the bare JID of an account of " .. module.host .. " and a fingerprint"));
		return true;
	end
	forget(account);
	local doomed = {};
	for session in pairs(cert_sessions) do
		local grant = session.saslcert;
		if grant and not session.destroyed and session.username == node and session.host == host
			and grant.fingerprint == fingerprint then
			doomed[#doomed + 1] = session;
		end
	end
	for _, state in pairs(ctx.pending_lookups) do
		if state.fingerprint == fingerprint then
			state.revoked = state.revoked or {};
			state.revoked[account] = true;
		end
	end
	for _, session in ipairs(doomed) do
		cert_sessions[session] = nil;
		session.log("info", "Closing session: its client certificate was revoked");
		session:close({ condition = "reset", text = revoked_text });
	end
	module:log("debug", "Revocation of %s for %s closed %d session(s)", fingerprint, account, #doomed);
	event.origin.send(st.reply(stanza):tag("revoked", { xmlns = xmlns_plugin, closed = tostring(#doomed) }));
	return true;
end);

-- A session bound with a certificate that was disabled before the bind's
-- notice reached the component: it logged in with an answer given (or
-- cached) before the change reached us. Close that one session (other
-- sessions of a disabled certificate stay, as with XEP-0257 <disable/>).
local disabled_text = "This client certificate has been disabled.";
module:hook("iq-set/host/" .. xmlns_plugin .. ":disabled", function (event)
	if not from_component(event) then return true; end
	local stanza = event.stanza;
	local payload = stanza:get_child("disabled", xmlns_plugin);
	local full = payload.attr.jid and jid_util.prep(payload.attr.jid);
	local fingerprint = payload.attr.fingerprint and payload.attr.fingerprint:lower();
	local node, host, res;
	if full then
		node, host, res = jid_util.split(full);
	end
	if not node or not res or host ~= module.host or not fingerprint then
		event.origin.send(st.error_reply(stanza, "modify", "bad-request",
			"disabled needs the full JID of a session on " .. module.host .. " and a fingerprint"));
		return true;
	end
	forget(jid_util.join(node, host));
	local doomed;
	for session in pairs(cert_sessions) do
		local grant = session.saslcert;
		if grant and not session.destroyed and session.full_jid == full and grant.fingerprint == fingerprint then
			doomed = session;
		end
	end
	if doomed then
		cert_sessions[doomed] = nil;
		doomed.log("info", "Closing session: it logged in with a certificate disabled before its bind was known");
		doomed:close({ condition = "reset", text = disabled_text });
	end
	event.origin.send(st.reply(stanza):tag("disabled", { xmlns = xmlns_plugin, closed = doomed and "1" or "0" }));
	return true;
end);

-- The component changed certificates of an account (appended, disabled,
-- revoked, issued, renewed): forget what is cached about it, and send the
-- queued session notices before the answer. Sent before the change is
-- acknowledged to anyone.
module:hook("iq-set/host/" .. xmlns_plugin .. ":changed", function (event)
	if not from_component(event) then return true; end
	local stanza = event.stanza;
	local payload = stanza.tags[1];
	local account = payload.attr.jid and jid_util.prep(payload.attr.jid);
	local node, host, res;
	if account then
		node, host, res = jid_util.split(account);
	end
	if not node or res or host ~= module.host then
		event.origin.send(st.error_reply(stanza, "modify", "bad-request",
			"changed needs the bare JID of an account of " .. module.host));
		return true;
	end
	if account ~= payload.attr.jid then
		-- Forgetting more is safe: the prepared account's answers go too.
		module:log("warn", "Component changed certificates of %q, which is %q here", payload.attr.jid, account);
	end
	forget(account);
	-- Sessions bound so far reach the component before this answer, which
	-- tells it that they bound before the change (component/boundorder.go):
	-- sessions of a certificate being disabled stay.
	flush_notices();
	event.origin.send(st.reply(stanza));
	return true;
end);

ctx.cert_sessions = cert_sessions;
ctx.fp_sessions = fp_sessions;
end
