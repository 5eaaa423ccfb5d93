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
--     saslcert_notice_delay = 0.05             -- seconds session notices are batched
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
--
-- This file reads the options and wires the parts, which lie beside it as
-- saslcert_*.lib.lua (module:require finds them in the same plugin_paths
-- directory): saslcert_util (names, certificate and SASL helpers),
-- saslcert_link (round trips to the component), saslcert_cache (what is
-- remembered, and when), saslcert_sessions (certificate sessions, notices,
-- revocations), saslcert_lookup (asking about a certificate, prefetch,
-- per-address limit), saslcert_login (SASL EXTERNAL), saslcert_stamp (auth
-- stamps), saslcert_forward (XEP-0257 forwarding) and saslcert_accounts
-- (account events, reconciliation). Each returns init(ctx): it reads
-- ctx.config, shares ctx.state, and adds its functions to ctx for the parts
-- initialised after it (or calls ctx.<name> at run time).

local jid_util = require "util.jid";
local configmanager = require "core.configmanager";

if module:get_host_type() ~= "local" then
	module:log("error", "mod_saslcert must be loaded on a VirtualHost, not on %s", module.host);
	return;
end

-- Every option the plugin reads, read once here (plugins/prosody/README.md
-- lists them); the parts get them in ctx.config.
local component = module:get_option_string("saslcert_component");
local timeout = module:get_option_number("saslcert_timeout", 5);
local disabled_mechanisms = module:get_option_set("disable_sasl_mechanisms", { "DIGEST-MD5" });
local lookup_rate = module:get_option_number("saslcert_lookup_rate", 5);
if lookup_rate <= 0 then lookup_rate = 5; end

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

local ctx = {
	config = {
		component = component;
		timeout = timeout;
		enabled = enabled;
		max_failures = math.max(1, math.floor(module:get_option_number("saslcert_max_failures", 3)));
		cache_size = module:get_option_number("saslcert_cache_size", 10000);
		cache_bytes = module:get_option_number("saslcert_cache_bytes", 4 * 1024 * 1024);
		refusal_ttl = module:get_option_number("saslcert_refusal_ttl", 10);
		lookup_burst = math.max(1, module:get_option_number("saslcert_lookup_burst", 50));
		lookup_rate = lookup_rate;
		prefetch = module:get_option_boolean("saslcert_prefetch", true);
		forward = module:get_option_boolean("saslcert_forward", true);
		notice_delay = module:get_option_number("saslcert_notice_delay", 0.05);
	};
	-- Shared state: link (the component's session, from its last
	-- <sessions/> query), cache_ttl, by_fingerprint, epoch (saslcert_cache).
	state = {};
};

-- The order matters: each part takes from ctx what the ones before it added.
for _, part in ipairs({ "link", "cache", "sessions", "lookup", "login", "stamp", "forward", "accounts" }) do
	module:require("saslcert_" .. part)(ctx);
end
