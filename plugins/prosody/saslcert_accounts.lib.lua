-- saslcert_accounts: account events for the component (docs/PLUGIN-PROTOCOL.md,
-- "account deleted", "account created") and the answers to its
-- reconciliation (<accounts/>). Loaded with
-- module:require("saslcert_accounts"); returns init(ctx), which adds
-- ctx.send_account_events() (called when the component connects) and hooks
-- user-deleted, user-registered and the <accounts/> query.
-- Options (from ctx.config): component.

local st = require "util.stanza";
local jid_util = require "util.jid";
local usermanager = require "core.usermanager";
local util = module:require("saslcert_util");

local xmlns_plugin = util.xmlns_plugin;

return function (ctx)
local component = ctx.config.component;
local next_id, request, forget, from_component = ctx.next_id, ctx.request, ctx.forget, ctx.from_component;

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
	module:log("error", "Cannot read the queued account events (%s); new ones are kept in memory only, "
		.. "and the component's reconciliation repairs the rest", account_queue_err);
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

ctx.send_account_events = send_account_events;
end
