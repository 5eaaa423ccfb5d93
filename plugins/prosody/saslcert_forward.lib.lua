-- saslcert_forward: users' XEP-0257 requests to their account or the server,
-- forwarded to the component in the XEP-0355 wire format, and its replies
-- (<items/> cached and completed with the live sessions' resources).
-- Loaded with module:require("saslcert_forward"); returns init(ctx), which
-- hooks iq/bare, iq/self and iq/host when ctx.config.forward.
-- Options (from ctx.config): component, forward.

local st = require "util.stanza";
local encodings = require "util.encodings";
local jid_util = require "util.jid";
local hashes = require "util.hashes";
local gettime = require "util.time".now;
local util = module:require("saslcert_util");

local base64_decode = encodings.base64.decode;
local xmlns_saslcert, xmlns_stanzas = util.xmlns_saslcert, util.xmlns_stanzas;

return function (ctx)
local config, state = ctx.config, ctx.state;
local component = config.component;
local fp_sessions = ctx.fp_sessions;
local items_cache, caching, forget = ctx.items_cache, ctx.caching, ctx.forget;
local next_id, request, snapshot, may_remember = ctx.next_id, ctx.request, ctx.snapshot, ctx.may_remember;

-- XEP-0257 requests of local users go to the component in the XEP-0355 wire
-- format (the component serves it as a delegated request; mod_delegation is
-- not needed): requests without 'to', to the account's own bare JID or to
-- the server. Replies come back through the same lean round trip, so a slow
-- component never holds the client's session, and an answer is always sent
-- (a timeout gives wait/remote-server-timeout). <items/> answers are cached
-- (see saslcert_cache) and their <users/> are filled in from the live
-- sessions here.
local xmlns_delegation = "urn:xmpp:delegation:2";
local xmlns_forward = "urn:xmpp:forward:0";
local forwarding = component ~= nil and config.forward;
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
				entry.expires = gettime() + state.cache_ttl;
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

end
