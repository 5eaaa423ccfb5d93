-- saslcert_stamp: the auth stamp (docs/PLUGIN-PROTOCOL.md, "auth stamp")
-- and <no-cert-management/> enforcement on every stanza of a bound client
-- session. Loaded with module:require("saslcert_stamp"); returns
-- init(ctx), which hooks pre-stanza. Options (from ctx.config): component;
-- the MAC key is the Component's component_secret, read at each use.

local st = require "util.stanza";
local jid_util = require "util.jid";
local hashes = require "util.hashes";
local util = module:require("saslcert_util");

local xmlns_plugin, xmlns_saslcert = util.xmlns_plugin, util.xmlns_saslcert;

return function (ctx)
local component = ctx.config.component;

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

end
