-- mod_saslcert: SASL EXTERNAL with client certificates decided by the
-- saslcert component (XEP-0178 logins for XEP-0257 certificates).
--
-- Prosody 0.12 (Lua 5.4). Load it on a VirtualHost:
--
--   VirtualHost "example.org"
--     modules_enabled = { "saslcert" }
--     saslcert_component = "certs.example.org" -- required: the component's JID
--     saslcert_timeout = 5                     -- seconds to wait for the component
--     saslcert_forward = true                  -- forward users' XEP-0257 requests
--     saslcert_prefetch = true                 -- ask at stream features, before <auth/>
--     saslcert_cache_size = 10000              -- entries per cache
--     saslcert_cache_bytes = 4194304           -- bytes per cache (an entry over a quarter is not kept)
--     saslcert_max_failures = 3                -- failed EXTERNAL attempts before the stream is closed
--     saslcert_lookup_burst = 50               -- lookups per client address at once ...
--     saslcert_lookup_rate = 5                 -- ... and per second after that
--     saslcert_refusal_ttl = 10                -- seconds a refusal is remembered
--
-- and let c2s TLS ask for client certificates:
--
--   c2s_ssl = { verify = { "peer"; "client_once" } }
--
-- The plugin offers EXTERNAL (first) on TLS streams where the client presented
-- a certificate, asks the component with a lookup IQ
-- (urn:x-saslcert:plugin:0, see docs/PLUGIN-PROTOCOL.md) and logs the client
-- in as the JID the component answers. It forces the resource of full-JID
-- certificates, tells the component when certificate sessions bind and close,
-- answers the component's <sessions/> query and closes sessions whose
-- certificate was revoked. It forwards XEP-0257 requests that users send to
-- their account or the server to the component (XEP-0355 wire format;
-- mod_delegation is not needed), and caches positive login answers and
-- <items/> lists as long as the component allows, forgetting them whenever
-- the component reports a change and when its connection ends. The
-- certificate chain is not checked: self-signed certificates are the point;
-- the component decides.

local st = require "util.stanza";
local async = require "util.async";
local id = require "util.id";
local jid_util = require "util.jid";
local encodings = require "util.encodings";
local set = require "util.set";
local sm_make_authenticated = require "core.sessionmanager".make_authenticated;
local usermanager = require "core.usermanager";
local cache = require "util.cache";
local hashes = require "util.hashes";
local throttle = require "util.throttle";
local net_pton = require "util.net".pton;
local configmanager = require "core.configmanager";

local base64_decode = encodings.base64.decode;
local utf8_valid = encodings.utf8.valid;

local xmlns_sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
local xmlns_plugin = "urn:x-saslcert:plugin:0";
local xmlns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

local max_authzid = 3071; -- RFC 6120 §6.3.8 / RFC 7622: 3071 bytes for a JID
-- The longest SASL data read: the base64 of the longest authzid and a little
-- whitespace around it. Longer data is refused before anything else looks
-- at it (no pattern ever runs on more than this).
local max_sasl_data = 4 * math.ceil(max_authzid / 3) + 64;
local revoked_text = "This client certificate has been revoked.";

-- SASL conditions (RFC 6120 §6.5) the component may ask us to send.
local sasl_conditions = set.new({
	"aborted", "account-disabled", "credentials-expired", "encryption-required",
	"incorrect-encoding", "invalid-authzid", "invalid-mechanism", "malformed-request",
	"mechanism-too-weak", "not-authorized", "temporary-auth-failure",
});

if module:get_host_type() ~= "local" then
	module:log("error", "mod_saslcert must be loaded on a VirtualHost, not on %s", module.host);
	return;
end

local component = module:get_option_string("saslcert_component");
local timeout = module:get_option_number("saslcert_timeout", 5);
local disabled_mechanisms = module:get_option_set("disable_sasl_mechanisms", { "DIGEST-MD5" });

if component then
	local prepped = jid_util.prep(component);
	if not prepped or jid_util.node(prepped) or jid_util.resource(prepped) then
		module:log("error", "saslcert_component = %q is not a domain JID; SASL EXTERNAL is disabled", component);
		component = nil;
	else
		component = prepped;
	end
else
	module:log("error", "saslcert_component is not set; SASL EXTERNAL is disabled");
end
-- The component gets client certificates and is believed: it must be an
-- external component (XEP-0114) of this server, never a name that routing
-- would send to another server (a typo with s2s on) nor a VirtualHost or an
-- internal component. Read from the configuration, which is complete when
-- modules load, whatever order the hosts are activated in.
if component and configmanager.rawget(component, "component_module") ~= "component" then
	module:log("error", "saslcert_component = %q is not a Component of this server with component_secret "
		.. "(an external component); refusing to load", component);
	error("saslcert_component " .. component .. " is not a local external component");
end
if not timeout or timeout <= 0 then
	timeout = 5;
end

local enabled = component ~= nil and not disabled_mechanisms:contains("EXTERNAL");
if component and not enabled then
	module:log("info", "EXTERNAL is in disable_sasl_mechanisms; not offering it");
end

-- Sessions that authenticated with a certificate (bound or not yet bound).
-- Weak keys: a destroyed session disappears by itself.
local weak_keys = { __mode = "k" };
local cert_sessions = setmetatable({}, weak_keys);
-- Lookups in flight: session -> { fingerprint = ..., revoked = { [jid] = true } }.
-- A revocation that arrives while the component's grant is on its way
-- marks them, so that the grant is not used.
local pending_lookups = setmetatable({}, weak_keys);

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

-- The client certificate of a session, or nil.
local function peer_certificate(session)
	local conn = session.conn;
	if not conn or not conn.socket then return nil; end
	local ok, cert = pcall(function ()
		local sock = conn:socket();
		if not sock or not sock.getpeercertificate then return nil; end
		return sock:getpeercertificate();
	end);
	if ok then return cert; end
	return nil;
end

-- base64 of the DER: the PEM body without armour and whitespace (LuaSec 1.2
-- has no der()). The certificate is the client's: plain searches and one
-- single-class gsub, linear in its size.
local function cert_der_base64(cert)
	local pem = cert:pem();
	if not pem then return nil; end
	local body = pem:find("\n", 1, true);
	local armour_end = pem:find("-----END", 1, true);
	if not body or not armour_end or armour_end <= body then return nil; end
	local b64 = pem:sub(body + 1, armour_end - 1):gsub("%s+", "");
	if b64 == "" then return nil; end
	return b64;
end

local function cert_fingerprint(cert)
	local hex = cert:digest("sha256");
	if not hex then return nil; end
	return "sha256:" .. hex:lower():gsub(":", "");
end

local function sasl_failure(condition, text)
	local reply = st.stanza("failure", { xmlns = xmlns_sasl }):tag(condition):up();
	if text then
		reply:text_tag("text", text);
	end
	return reply;
end

-- Failed EXTERNAL attempts a connection may make: the one that reaches
-- the limit is answered and the stream closed (policy-violation), so that
-- one connection cannot keep the component busy.
local max_failures = math.max(1, math.floor(module:get_option_number("saslcert_max_failures", 3)));
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

local function is_space(byte)
	return byte == 32 or (byte >= 9 and byte <= 13);
end

-- Decodes SASL data: nil/"" (empty element) and "=" are the empty string;
-- otherwise strict base64 with optional whitespace around it. Returns nil
-- and the SASL condition when the data is longer than max_sasl_data
-- (malformed-request, checked first) or badly encoded (incorrect-encoding).
-- Linear in the input: whitespace is trimmed byte by byte, and the one
-- pattern is anchored with a single repetition.
local function decode_sasl_data(text)
	if text == nil then return ""; end
	if #text > max_sasl_data then return nil, "malformed-request"; end
	local first, last = 1, #text;
	while first <= last and is_space(text:byte(first)) do first = first + 1; end
	while last >= first and is_space(text:byte(last)) do last = last - 1; end
	text = text:sub(first, last);
	if text == "" or text == "=" then return ""; end
	if #text % 4 ~= 0 or not text:match("^[A-Za-z0-9+/]+=?=?$") then
		return nil, "incorrect-encoding";
	end
	local decoded = base64_decode(text);
	if decoded == nil then return nil, "incorrect-encoding"; end
	return decoded;
end

-- Finds the SASL condition in an IQ error from the component.
local function error_from_reply(reply_stanza, err)
	local stanza = reply_stanza or (err and err.context and err.context.stanza);
	local err_type, text, sasl_cond;
	if stanza then
		local error_tag = stanza:get_child("error");
		if error_tag then
			err_type = error_tag.attr.type;
			text = error_tag:get_child_text("text", xmlns_stanzas);
			local sasl_child = error_tag:get_child(nil, xmlns_sasl);
			sasl_cond = sasl_child and sasl_child.name;
		end
	elseif err then
		err_type, text = err.type, err.text;
	end
	return err_type, sasl_cond, text;
end

-- Round trips to the component without module:send_iq, which costs a promise,
-- two hooks and a timer per IQ: one table of waiting requests keyed by id,
-- one sweep timer for all timeouts (running only while requests wait), and
-- replies taken from iq/host before mod_iq dispatches them.
local gettime = require "util.time".now;
local id_prefix = "saslcert-" .. id.short() .. "-";
local id_counter = 0;
local waiting = {}; -- id -> { done = function (reply, origin), deadline = seconds }
local sweep_interval = math.min(0.25, timeout / 4);
local sweeping = false;
local comp_link = nil;  -- the component's session, from its last <sessions/> query
local cache_ttl = 0;     -- seconds, from that query's cache-ttl (0: no caching)
local by_fingerprint = false; -- that query's lookup='fingerprint'

local function next_id()
	id_counter = id_counter + 1;
	return id_prefix .. id_counter;
end

-- Whether the component's host is active here as a component (checked at
-- load from the configuration; this is for hosts deactivated later):
-- nothing is sent to its JID otherwise, so that routing never carries it
-- to another server.
local function component_local()
	local host = component and prosody.hosts[component];
	return host ~= nil and host.type == "component";
end

-- Whether origin is the component's own connection: an authenticated
-- XEP-0114 session of the component's host. Not the host object itself,
-- another component claiming its JID, a server-to-server stream or a
-- client; only answers and requests on this session are believed.
local function is_component_session(origin)
	return component ~= nil and origin ~= nil and origin.type == "component" and origin.host == component
		and origin ~= prosody.hosts[component] and origin.conn ~= nil and not origin.destroyed;
end

local function sweep()
	local now, left = gettime(), false;
	for rid, w in pairs(waiting) do
		if w.deadline <= now then
			waiting[rid] = nil;
			w.done(nil, nil);
		else
			left = true;
		end
	end
	if left then return sweep_interval; end
	sweeping = false;
end

-- Sends iq (whose id must come from next_id()) to the component and calls
-- done(reply, origin) once: with the reply stanza (result or error) and the
-- session it came on, or with nil after saslcert_timeout. When the component
-- is disconnected Prosody answers with an error at once (done may then run
-- before request returns).
local function request(iq, done)
	if not component_local() then
		module:log("warn", "%s is not an active component host; not sending", component or "?");
		done(st.error_reply(iq, "wait", "service-unavailable"), nil);
		return;
	end
	waiting[iq.attr.id] = { done = done, deadline = gettime() + timeout };
	if not sweeping then
		sweeping = true;
		module:add_timer(sweep_interval, sweep);
	end
	local link = comp_link;
	if is_component_session(link) and link.send then
		-- Straight onto the component's stream: what routing would do.
		iq.attr.xmlns = nil;
		link.send(iq);
	else
		module:send(iq); -- routed; bounced at once if the component is away
	end
end

-- request, waiting in the session's async runner: returns the reply (or nil
-- after the timeout) and the session it came on.
local function round_trip(iq)
	local wait, wake = async.waiter();
	local reply, origin;
	request(iq, function (r, o)
		reply, origin = r, o;
		wake();
	end);
	wait();
	return reply, origin;
end

module:hook("iq/host", function (event)
	local stanza = event.stanza;
	local typ, rid = stanza.attr.type, stanza.attr.id;
	if (typ ~= "result" and typ ~= "error") or not rid or rid:sub(1, #id_prefix) ~= id_prefix then
		return;
	end
	if stanza.attr.from ~= component then
		return; -- not an answer from the component: not ours to take
	end
	if not is_component_session(event.origin)
		and not (typ == "error" and event.origin == prosody.hosts[component]) then
		-- The component's JID, but not on its connection (another component
		-- with validate_from_addresses = false, a module): not believed.
		-- Errors from the component's host are Prosody's bounces while the
		-- component is away (an error never grants anything).
		module:log("warn", "Ignoring an answer from %s that did not come on its connection (%s)",
			component, event.origin and event.origin.type or "?");
		return true;
	end
	local w = waiting[rid];
	if w then
		waiting[rid] = nil;
		w.done(stanza, event.origin);
	elseif typ == "error" then
		local _, condition, text = stanza:get_error();
		module:log("debug", "The component answered %s with %s (%s)", rid, condition or "?", text or "");
	end
	return true;
end, 10);

-- Caches (docs/PLUGIN-PROTOCOL.md, "caching"). The component allows them in
-- the <sessions/> query it sends after each connect (cache-ttl); they hold
-- only while that connection lives, and every change the component makes
-- reaches us as <changed/> or <revoked/> before it is acknowledged. An answer
-- is remembered only if it came on that connection, was asked for on it, and
-- nothing was forgotten while it was on its way (epoch).
local cache_size = module:get_option_number("saslcert_cache_size", 10000);
local cache_bytes = module:get_option_number("saslcert_cache_bytes", 4 * 1024 * 1024);
local refusal_ttl = module:get_option_number("saslcert_refusal_ttl", 10);
local epoch = 0;        -- bumped whenever anything is forgotten

-- A cache bounded by entries (saslcert_cache_size) and by bytes
-- (saslcert_cache_bytes): util.cache keeps the order and the count, and
-- each entry is charged the size set gives it. Setting an entry evicts the
-- oldest ones until the total fits; an entry over a quarter of the budget is
-- not kept at all (set returns false). on_drop(key, value) runs whenever an
-- entry leaves other than by clear. get, set(key, nil), clear as util.cache.
local bounded_mt = {};
bounded_mt.__index = bounded_mt;

local function bounded_cache(on_drop)
	local self = setmetatable({ bytes = 0, sizes = {}, on_drop = on_drop }, bounded_mt);
	self.c = cache.new(cache_size, function (key, value)
		self.bytes = self.bytes - (self.sizes[key] or 0);
		self.sizes[key] = nil;
		if self.on_drop then self.on_drop(key, value); end
	end);
	return self;
end

function bounded_mt:get(key)
	return self.c:get(key);
end

function bounded_mt:set(key, value, size)
	local old = self.c:get(key);
	if old ~= nil then
		self.c:set(key, nil);
		self.bytes = self.bytes - (self.sizes[key] or 0);
		self.sizes[key] = nil;
		if self.on_drop then self.on_drop(key, old); end
	end
	if value == nil then return true; end
	size = size + #key;
	if size > cache_bytes / 4 then return false; end
	while self.bytes + size > cache_bytes and self.c:count() > 0 do
		self:set((self.c:tail()), nil);
	end
	self.c:set(key, value);
	self.sizes[key] = size;
	self.bytes = self.bytes + size;
	return true;
end

function bounded_mt:clear()
	self.c:clear();
	self.sizes = {};
	self.bytes = 0;
end

-- Positive lookups: fingerprint .. "\0" .. authzid -> grant, and an index of
-- their keys by account so that an account can be forgotten at once.
local login_keys = {}; -- account -> { [key] = true }
local login_cache = bounded_cache(function (key, grant)
	local keys = login_keys[grant.account];
	if keys then
		keys[key] = nil;
		if next(keys) == nil then login_keys[grant.account] = nil; end
	end
end);
-- <items/> answers: account -> { items = <items/> without <users/>, fps = { fingerprint per <item/> }, expires }.
local items_cache = bounded_cache();
-- Refusals (SASL failures of type auth): fingerprint .. "\0" .. authzid ->
-- { condition, text, expires }, for saslcert_refusal_ttl seconds at most, so
-- that repeating a refused login does not ask the component each time.
-- Emptied whole whenever anything is forgotten: a <changed/> names the
-- account, not the certificate, and an upload right after a refusal must
-- log in.
local refusal_cache = bounded_cache();

local function forget_all()
	login_cache:clear();
	login_keys = {};
	items_cache:clear();
	refusal_cache:clear();
	epoch = epoch + 1;
end

local function forget(account)
	epoch = epoch + 1;
	refusal_cache:clear();
	items_cache:set(account, nil);
	local keys = login_keys[account];
	if keys then
		login_keys[account] = nil;
		for key in pairs(keys) do
			login_cache:set(key, nil);
		end
	end
end

-- Whether answers may be remembered and reused now; forgets everything once
-- the connection that allowed it is gone.
local function link_alive()
	local link = comp_link;
	if link == nil then return false; end
	if not is_component_session(link) then
		module:log("debug", "The component's connection is gone; forgetting the cache");
		comp_link, cache_ttl, by_fingerprint = nil, 0, false;
		forget_all();
		return false;
	end
	return true;
end

local function caching()
	return link_alive() and cache_ttl > 0;
end

-- A snapshot taken when a request is sent; may_remember(snap, origin) says
-- whether its answer, which came on origin, may be remembered.
local function snapshot()
	return comp_link, epoch;
end

local function may_remember(link, sent_epoch, origin)
	return link ~= nil and origin == link and link == comp_link and sent_epoch == epoch and caching();
end

local function still_unauthenticated(session)
	return not session.destroyed and session.type == "c2s_unauthed" and not session.username and session.conn ~= nil;
end

-- Lookups per client address: a token bucket of saslcert_lookup_burst
-- tokens refilled at saslcert_lookup_rate per second, for every lookup sent
-- (prefetch included; remembered answers cost nothing). IPv6 addresses
-- share the bucket of their /64. At most saslcert_cache_size addresses are
-- tracked; the oldest is forgotten first.
local lookup_burst = math.max(1, module:get_option_number("saslcert_lookup_burst", 50));
local lookup_rate = module:get_option_number("saslcert_lookup_rate", 5);
if lookup_rate <= 0 then lookup_rate = 5; end
local too_many_lookups = "Too many certificate logins from your address; try again later";
local lookup_buckets = cache.new(cache_size);

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

-- Remembers the refusal of fingerprint with authzid, if the answer (sent
-- at sent_epoch on sent_link, come on origin) may be remembered.
local function remember_refusal(fingerprint, authzid, condition, text, sent_link, sent_epoch, origin)
	if refusal_ttl <= 0 or not may_remember(sent_link, sent_epoch, origin) then return; end
	local ttl = math.min(refusal_ttl, cache_ttl);
	refusal_cache:set(fingerprint .. "\0" .. authzid,
		{ condition = condition, text = text, expires = gettime() + ttl }, 128 + #(text or ""));
end

-- The remembered refusal of key ({ condition, text }), or nil.
local function remembered_refusal(key)
	if not caching() then return nil; end
	local refusal = refusal_cache:get(key);
	if refusal and refusal.expires <= gettime() then
		refusal_cache:set(key, nil);
		return nil;
	end
	return refusal;
end

-- The lookup IQ for cert: by fingerprint when the component accepts that
-- (a few bytes instead of the whole certificate to encode, send and parse),
-- else with the base64 DER. Returns the IQ and whether it names the
-- certificate by fingerprint, or nil if the certificate cannot be read.
local function lookup_iq(cert, fingerprint, authzid, whole)
	local lookup = st.iq({ type = "get", from = module.host, to = component, id = next_id() })
		:tag("lookup", { xmlns = xmlns_plugin, authzid = authzid ~= "" and authzid or nil });
	if not whole and by_fingerprint and link_alive() then
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
	if authzid ~= "" or p.fingerprint ~= fingerprint or p.epoch ~= epoch or gettime() - p.sent > timeout then
		return nil;
	end
	if not p.done then
		local wait, wake = async.waiter();
		p.wake = wake;
		wait();
		if p.epoch ~= epoch then return nil; end
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
		max_age = math.min(math.floor(max_age), cache_ttl);
		grant.max_age = max_age;
		grant.expires = gettime() + max_age;
	end
	return grant;
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
		if grant.max_age and login_cache:set(key, grant, 256 + #grant.account) then
			local keys = login_keys[grant.account];
			if not keys then
				keys = {};
				login_keys[grant.account] = keys;
			end
			keys[key] = true;
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

-- Starts the lookup for the authzid "" (what clients send) as soon as the
-- client certificate is known, when stream features are offered after TLS:
-- the answer is usually back by the time the client's <auth/> arrives, so
-- the round trip to the component adds no latency to the login. Skipped when
-- the cache already has the answer or the certificate cannot be read.
local prefetching = module:get_option_boolean("saslcert_prefetch", true);
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

if enabled then
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

-- Enforce <no-cert-management/> here, where the session is known for sure:
-- a session that logged in with such a certificate may not send XEP-0257
-- append, disable or revoke (delegated or addressed to the component).
--
-- And stamp requests with how their session logged in (docs/PLUGIN-PROTOCOL.md,
-- "auth stamp"): the component decides management rights from the stamp
-- alone, so that they hold for the first stanza after bind (before the
-- session notice) and after every component reconnect. pre-stanza sees every
-- stanza of a bound c2s session of this host, whatever its destination and
-- however it is pipelined. Every <auth xmlns='urn:x-saslcert:plugin:0'/> a
-- client put at the top of a stanza is removed first; then every IQ set to
-- the component (any JID of its domain), and every XEP-0257 set to the
-- account or the server (which this module or mod_delegation passes on),
-- gets one stamp after its payload, with a MAC keyed by the component
-- secret: only Prosody can make a stamp the component accepts, and a
-- request without one may not manage certificates.
local xmlns_saslcert = "urn:xmpp:saslcert:1";
local managing = { append = true, disable = true, revoke = true };
local hmac_sha256 = hashes.hmac_sha256;
local stamp_secret_missing_logged = false;
local component_context = component and module:context(component);

-- The component secret (the MAC key), from the Component's configuration
-- (read at each use, so that a configuration reload is seen).
local function stamp_secret()
	local secret = component_context and component_context:get_option_string("component_secret");
	if not secret and not stamp_secret_missing_logged then
		stamp_secret_missing_logged = true;
		module:log("error", "No component_secret for %s in the configuration: requests cannot be stamped, "
			.. "so the component lets no session of %s manage certificates", tostring(component), module.host);
	end
	return secret;
end

-- What the MAC covers: each field length-prefixed (component/stamp.go).
local function stamp_message(full_jid, id, method, fingerprint, manage)
	local parts = { "urn:x-saslcert:plugin:0 auth\n" };
	for _, v in ipairs({ full_jid, id, method, fingerprint, manage }) do
		parts[#parts + 1] = #v .. ":" .. v .. ",";
	end
	return table.concat(parts);
end

-- Whether stanza (a set from origin) must carry a stamp.
local function wants_stamp(origin, stanza)
	local to = stanza.attr.to;
	local payload = stanza.tags[1];
	local is_xep0257 = payload ~= nil and payload.attr.xmlns == xmlns_saslcert;
	if to == nil then return is_xep0257; end -- the account itself (Prosody drops its bare JID)
	local node, host, res = jid_util.split(to);
	if host == component then return true; end
	return is_xep0257 and host == module.host and not res and (node == nil or node == origin.username);
end

local function stamp(origin, stanza)
	local secret = stamp_secret();
	if not secret or not origin.full_jid then return; end
	local grant = origin.saslcert;
	local method, fingerprint, manage = "other", "", "true";
	if grant then
		method, fingerprint = "certificate", grant.fingerprint or "";
		manage = grant.no_cert_management and "false" or "true";
	end
	local id = stanza.attr.id or "";
	local mac = hmac_sha256(secret, stamp_message(origin.full_jid, id, method, fingerprint, manage), true);
	stanza:add_direct_child(st.stanza("auth", {
		xmlns = xmlns_plugin, jid = origin.full_jid, id = id, method = method,
		fingerprint = fingerprint ~= "" and fingerprint or nil, manage = manage, mac = mac,
	}));
end

module:hook("pre-stanza", function (event)
	local origin, stanza = event.origin, event.stanza;
	for _, tag in ipairs(stanza.tags) do
		if tag.name == "auth" and tag.attr.xmlns == xmlns_plugin then
			origin.log("info", "Removing an auth stamp the client put in a stanza");
			stanza:remove_children("auth", xmlns_plugin);
			break;
		end
	end
	if stanza.name ~= "iq" or stanza.attr.type ~= "set" then
		return;
	end
	local grant = origin.saslcert;
	local payload = stanza.tags[1];
	if grant and grant.no_cert_management and payload and payload.attr.xmlns == xmlns_saslcert and managing[payload.name] then
		origin.log("debug", "Refused XEP-0257 %s from a no-cert-management session", payload.name);
		origin.send(st.error_reply(stanza, "auth", "forbidden",
			"this session logged in with a certificate that may not manage certificates"));
		return true;
	end
	if wants_stamp(origin, stanza) then
		stamp(origin, stanza);
	end
end, 100);

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

-- XEP-0257 requests of local users go to the component in the XEP-0355 wire
-- format (the component serves it as a delegated request; mod_delegation is
-- not needed): requests without 'to', to the account's own bare JID or to
-- the server. Replies come back through the same lean round trip, so a slow
-- component never holds the client's session, and an answer is always sent
-- (a timeout gives wait/remote-server-timeout). <items/> answers are cached
-- (see "Caches" above) and their <users/> are filled in from the live
-- sessions here.
local xmlns_delegation = "urn:xmpp:delegation:2";
local xmlns_forward = "urn:xmpp:forward:0";
local forwarding = component ~= nil and module:get_option_boolean("saslcert_forward", true);
local sha256 = hashes.sha256;

-- An error IQ to the client for the request (id, from, to).
local function client_error(req, err_type, condition, text)
	local reply = st.iq({ type = "error", id = req.id, to = req.from, from = req.to })
		:tag("error", { type = err_type or "cancel" })
			:tag(condition or "undefined-condition", { xmlns = xmlns_stanzas }):up();
	if text then
		reply:text_tag("text", text, { xmlns = xmlns_stanzas });
	end
	return reply;
end

-- The client's answer inside the component's reply to a forwarded request:
-- the inner <iq/> of <delegation><forwarded/></delegation>, readdressed to
-- the client; or nil, type, condition, text for the error to send instead.
local function unwrap_reply(req, reply)
	if not reply then
		-- The outcome is unknown: the component may have carried it out.
		return nil, "wait", "remote-server-timeout",
			"the certificate service did not answer in time; the request may or may not have been carried out";
	end
	if reply.attr.type == "error" then
		-- Prosody could not deliver the request (the component is not
		-- connected), or the component refused the wrapper: not carried out.
		local _, condition, text = reply:get_error();
		module:log("debug", "Forwarded request failed: %s (%s)", condition or "?", text or "");
		return nil, "wait", "service-unavailable", "the certificate service is unavailable; try again later";
	end
	local delegation = reply:get_child("delegation", xmlns_delegation);
	local forwarded = delegation and delegation:get_child("forwarded", xmlns_forward);
	local inner = forwarded and forwarded:get_child("iq", "jabber:client");
	if not inner or inner.attr.id ~= req.id or (inner.attr.type ~= "result" and inner.attr.type ~= "error") then
		module:log("warn", "The component answered a forwarded request with a malformed reply");
		return nil, "wait", "internal-server-error", "the certificate service sent a malformed answer";
	end
	inner.attr.xmlns = nil;
	inner.attr.to = req.from;
	inner.attr.from = req.to;
	return inner;
end

-- The cacheable form of the <items/> the component answered: without
-- <users/>, with the fingerprint of each <item/>'s certificate.
local function items_entry(items)
	items = st.clone(items);
	local fps = {};
	for i, item in ipairs(items.tags) do
		item:maptags(function (child)
			if child.name == "users" then return nil; end
			return child;
		end);
		local b64 = item:get_child_text("x509cert");
		local der = b64 and base64_decode((b64:gsub("%s+", "")));
		fps[i] = der and ("sha256:" .. sha256(der, true)) or false;
	end
	-- Charged to saslcert_cache_bytes: the serialised list and the fingerprints.
	return { items = items, fps = fps, bytes = #tostring(items) + 80 * #fps + 256 };
end

-- The answer to an <items/> request from entry, with the resources of the
-- account's live sessions that logged in with each certificate.
local function items_reply(req, entry, username)
	local items = st.clone(entry.items);
	for i, item in ipairs(items.tags) do
		local sessions = entry.fps[i] and fp_sessions[entry.fps[i]];
		if sessions then
			local resources = {};
			for session in pairs(sessions) do
				if not session.destroyed and session.username == username and session.host == module.host
					and session.resource then
					resources[#resources + 1] = session.resource;
				end
			end
			if #resources > 0 then
				table.sort(resources);
				local users = st.stanza("users", { xmlns = xmlns_saslcert });
				for _, r in ipairs(resources) do
					users:text_tag("resource", r);
				end
				item:add_child(users);
			end
		end
	end
	return st.iq({ type = "result", id = req.id, to = req.from, from = req.to }):add_child(items);
end

local function forward_request(event)
	local origin, stanza = event.origin, event.stanza;
	local payload = stanza.tags[1];
	local typ = stanza.attr.type;
	if not payload or payload.attr.xmlns ~= xmlns_saslcert or (typ ~= "get" and typ ~= "set") then
		return;
	end
	local req = { id = stanza.attr.id, from = stanza.attr.from, to = stanza.attr.to };
	if origin.type ~= "c2s" or not origin.username or origin.host ~= module.host then
		origin.send(client_error(req, "auth", "forbidden", "requests must come from an account of " .. module.host));
		return true;
	end
	local account = jid_util.join(origin.username, origin.host);
	if req.to and req.to ~= account and req.to ~= module.host then
		origin.send(client_error(req, "auth", "forbidden", "you may only manage your own certificates"));
		return true;
	end
	local is_items = typ == "get" and payload.name == "items";
	if is_items and caching() then
		local entry = items_cache:get(account);
		if entry and entry.expires > gettime() then
			origin.send(items_reply(req, entry, origin.username));
			return true;
		end
	end
	if typ == "set" then
		forget(account);
	end
	stanza.attr.xmlns = "jabber:client";
	stanza.attr.from = origin.full_jid;
	local iq = st.iq({ type = "set", from = module.host, to = component, id = next_id() })
		:tag("delegation", { xmlns = xmlns_delegation })
			:tag("forwarded", { xmlns = xmlns_forward })
				:add_child(stanza);
	local sent_link, sent_epoch = snapshot();
	request(iq, function (reply, reply_origin)
		if origin.destroyed then return; end
		local answer, err_type, condition, text = unwrap_reply(req, reply);
		if not answer then
			origin.send(client_error(req, err_type, condition, text));
			return;
		end
		if is_items and answer.attr.type == "result" then
			-- The answer goes out as the component wrote it (its <users/>
			-- follow the session notices); a copy without <users/> is kept.
			local items = answer:get_child("items", xmlns_saslcert);
			if items and may_remember(sent_link, sent_epoch, reply_origin) then
				local entry = items_entry(items);
				entry.expires = gettime() + cache_ttl;
				if not items_cache:set(account, entry, entry.bytes) then
					module:log("debug", "Not caching the <items/> of %s: %d bytes", account, entry.bytes);
				end
			end
		elseif typ == "set" then
			forget(account);
		end
		origin.send(answer);
	end);
	return true;
end

if forwarding then
	module:add_feature(xmlns_saslcert);
	module:hook("iq/bare", forward_request, 10);
	module:hook("iq/self", forward_request, 10);
	module:hook("iq/host", forward_request, 5);
end

-- Session notices are batched: one <message/> (no answer) carries every
-- notice of saslcert_notice_delay seconds (default 0.05), in order, so a
-- login costs no extra round trip. A notice lost while the component is
-- disconnected is repaired by the <sessions/> list it asks for on connect.
local notice_delay = module:get_option_number("saslcert_notice_delay", 0.05);
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

-- Account events (docs/PLUGIN-PROTOCOL.md, "account deleted", "account
-- created"). A deleted account's certificates must not log in to whoever
-- registers the name next: the component revokes them and refuses writes for
-- the account (a tombstone) until the name is registered again here. Both
-- events are queued in Prosody's storage, in order, until the component
-- acknowledges them, and sent one at a time (so they are processed in
-- order) now, after every (re)connect and every account_retry seconds while
-- some are left. Deletions prosodyctl makes in its own process (where this
-- module is not loaded) are found by the component's reconciliation, which
-- asks <accounts/> below.
local account_store = module:open_store("saslcert_account_events");
local account_queue, account_queue_err = account_store:get(nil);
if account_queue_err then
	-- Never overwrite what could not be read: keep new events in memory.
	module:log("error", "Cannot read the queued account events (%s); new ones are kept in memory only, and the component's reconciliation repairs the rest", account_queue_err);
end
account_queue = type(account_queue) == "table" and account_queue or {};
local account_queue_max = 10000;
local account_retry = 30;
local account_sending = false;
local account_retry_timer = false;

local function save_account_queue()
	if account_queue_err then return; end
	local ok, err = account_store:set(nil, #account_queue > 0 and account_queue or nil);
	if not ok then
		module:log("error", "Cannot store the queued account events: %s", err or "?");
	end
end

local send_account_events;

local function retry_account_events()
	if account_retry_timer then return; end
	account_retry_timer = true;
	module:add_timer(account_retry, function ()
		account_retry_timer = false;
		send_account_events();
	end);
end

-- Sends the oldest queued event; its acknowledgement sends the next one.
function send_account_events()
	if account_sending or not component or #account_queue == 0 then return; end
	local ev = account_queue[1];
	local name = ev.event == "created" and "account-created" or "account-deleted";
	account_sending = true;
	request(st.iq({ type = "set", from = module.host, to = component, id = next_id() })
		:tag(name, { xmlns = xmlns_plugin, jid = ev.jid }):up(), function (reply, origin)
		account_sending = false;
		local drop = reply and reply.attr.type == "result";
		if reply and reply.attr.type == "error" then
			local err_type, condition, text = reply:get_error();
			if err_type ~= "wait" and origin and origin.type == "component" then
				-- The component refused it for good: retrying cannot help.
				module:log("warn", "The component refused %s of %s: %s (%s)", name, ev.jid, condition or "?", text or "");
				drop = true;
			end
		end
		if not drop then
			module:log("debug", "%s of %s not acknowledged yet; retrying later", name, ev.jid);
			retry_account_events();
			return;
		end
		if account_queue[1] == ev then
			table.remove(account_queue, 1);
			save_account_queue();
		end
		module:log("debug", "The component acknowledged %s of %s", name, ev.jid);
		send_account_events();
	end);
end

local function queue_account_event(event_name, account)
	if not component then return; end
	if #account_queue >= account_queue_max then
		module:log("error", "%d account events are waiting for the component; dropping %s of %s (its reconciliation repairs it)",
			#account_queue, event_name, account);
		return;
	end
	account_queue[#account_queue + 1] = { event = event_name, jid = account };
	save_account_queue();
	send_account_events();
end

-- The event is global; only deletions on this host are ours.
module:hook_global("user-deleted", function (event)
	if not component or event.host ~= module.host or not event.username then return; end
	local account = jid_util.join(event.username, module.host);
	forget(account);
	module:log("debug", "Account %s deleted: asking %s to revoke its certificates", account, component);
	queue_account_event("deleted", account);
end);

-- In-band (and web) registration: the name is new, its tombstone may go.
module:hook("user-registered", function (event)
	if not component or not event.username then return; end
	local account = jid_util.join(event.username, module.host);
	forget(account);
	queue_account_event("created", account);
end);

-- Whether the account node exists here: true, false, or nil when that
-- cannot be told (a storage error must not look like a deleted account). A
-- "no" from the auth provider is believed only where the accounts store can
-- confirm it (internal_hashed, internal_plain: nil without an error).
local auth_accounts = module:open_store("accounts");
local function account_exists(node)
	local provider = usermanager.get_provider(module.host);
	if not provider or not provider.user_exists then return nil; end
	local ok, exists = pcall(provider.user_exists, node);
	if not ok then return nil; end
	if exists then return true; end
	if provider.name ~= "internal_hashed" and provider.name ~= "internal_plain" then return nil; end
	local ok2, data, err = pcall(auth_accounts.get, auth_accounts, node);
	if ok2 and data == nil and err == nil then return false; end
	return nil;
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

-- Plugin IQs from the component: only from the configured component JID on
-- the component's own connection.
local function from_component(event)
	local origin, stanza = event.origin, event.stanza;
	if is_component_session(origin) and stanza.attr.from and jid_util.prep(stanza.attr.from) == component then
		return true;
	end
	module:log("debug", "Refusing plugin IQ from %s (%s)", stanza.attr.from or "?", origin.type or "?");
	origin.send(st.error_reply(stanza, "auth", "forbidden"));
	return false;
end

module:hook("iq-get/host/" .. xmlns_plugin .. ":sessions", function (event)
	if not from_component(event) then return true; end
	-- Sent by the component after each connect: a new connection starts
	-- with an empty cache, allowed for cache-ttl seconds per answer.
	local query = event.stanza.tags[1];
	local ttl = tonumber(query.attr["cache-ttl"]);
	forget_all();
	comp_link = event.origin;
	cache_ttl = (ttl and ttl >= 1) and math.min(math.floor(ttl), 86400) or 0;
	by_fingerprint = query.attr.lookup == "fingerprint";
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
	send_account_events(); -- what waited for the component
	return true;
end);

-- The component's reconciliation: which of these accounts exist here?
-- exists='true', 'false', or 'unknown' (the check failed, or the JID is not
-- in Prosody's canonical form); at most 1000 per query.
module:hook("iq-get/host/" .. xmlns_plugin .. ":accounts", function (event)
	if not from_component(event) then return true; end
	local stanza = event.stanza;
	local query = stanza.tags[1];
	if #query.tags > 1000 then
		event.origin.send(st.error_reply(stanza, "modify", "policy-violation", "at most 1000 accounts per query"));
		return true;
	end
	local reply = st.reply(stanza):tag("accounts", { xmlns = xmlns_plugin });
	for _, item in ipairs(query.tags) do
		local given = item.name == "account" and item.attr.jid;
		if given then
			local prepped = jid_util.prep(given);
			local node, host, res;
			if prepped then node, host, res = jid_util.split(prepped); end
			local exists;
			if prepped == given and node and not res and host == module.host then
				exists = account_exists(node);
			end
			reply:tag("account", { jid = given, exists = exists == nil and "unknown" or tostring(exists) }):up();
		end
	end
	event.origin.send(reply);
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
	for _, state in pairs(pending_lookups) do
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
-- revoked, issued, renewed): forget what is cached about it. Sent before the
-- change is acknowledged to anyone.
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
	event.origin.send(st.reply(stanza));
	return true;
end);
