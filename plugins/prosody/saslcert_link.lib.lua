-- saslcert_link: round trips to the component (docs/PLUGIN-PROTOCOL.md).
-- Sends IQs and takes their answers, times them out, and tells whether a
-- session is the component's own connection. Loaded with
-- module:require("saslcert_link"); returns init(ctx), which adds to ctx:
--   next_id(), component_local(), is_component_session(origin),
--   request(iq, done), round_trip(iq), from_component(event)
-- and keeps ctx.state.link (the component's session, from its last
-- <sessions/> query; set by saslcert_cache's connected()).
-- Options (from ctx.config): component, timeout.

local st = require "util.stanza";
local async = require "util.async";
local id = require "util.id";
local jid_util = require "util.jid";
local gettime = require "util.time".now;

return function (ctx)
local component, timeout = ctx.config.component, ctx.config.timeout;
local state = ctx.state;

-- Round trips to the component without module:send_iq, which costs a promise,
-- two hooks and a timer per IQ: one table of waiting requests keyed by id,
-- one sweep timer for all timeouts (running only while requests wait), and
-- replies taken from iq/host before mod_iq dispatches them.
local id_prefix = "saslcert-" .. id.short() .. "-";
local id_counter = 0;
local waiting = {}; -- id -> { done = function (reply, origin), deadline = seconds }
local sweep_interval = math.min(0.25, timeout / 4);
local sweeping = false;

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

-- The callbacks run after the traversal: one may resume a login that sends
-- another request (a new key in the table while pairs() walks it is
-- undefined in Lua and may skip an entry, which would then never time
-- out), and one that fails must not stop the timer for the others.
local function sweep()
	local now, expired = gettime(), {};
	for rid, w in pairs(waiting) do
		if w.deadline <= now then
			waiting[rid] = nil;
			expired[#expired + 1] = w;
		end
	end
	for _, w in ipairs(expired) do
		local ok, err = pcall(w.done, nil, nil);
		if not ok then
			module:log("error", "A timed-out request's callback failed: %s", tostring(err));
		end
	end
	if next(waiting) ~= nil then return sweep_interval; end
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
	local link = state.link;
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

-- Plugin IQs from the component: only from the configured component JID on
-- the component's own connection. Answers others with forbidden.
local function from_component(event)
	local origin, stanza = event.origin, event.stanza;
	if is_component_session(origin) and stanza.attr.from and jid_util.prep(stanza.attr.from) == component then
		return true;
	end
	module:log("debug", "Refusing plugin IQ from %s (%s)", stanza.attr.from or "?", origin.type or "?");
	origin.send(st.error_reply(stanza, "auth", "forbidden"));
	return false;
end

ctx.next_id = next_id;
ctx.component_local = component_local;
ctx.is_component_session = is_component_session;
ctx.request = request;
ctx.round_trip = round_trip;
ctx.from_component = from_component;
end
