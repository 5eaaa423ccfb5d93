-- saslcert_cache: what the plugin remembers of the component's answers
-- (docs/PLUGIN-PROTOCOL.md, "caching"): positive lookups, <items/> lists and
-- refusals, each in a cache bounded by entries and bytes, and the rules for
-- when an answer may be remembered. Loaded with
-- module:require("saslcert_cache"); returns init(ctx), which adds to ctx:
--   login_cache, remember_login(key, grant), items_cache,
--   forget(account), forget_all(), connected(origin, ttl, by_fingerprint),
--   link_alive(), caching(), snapshot(), may_remember(link, epoch, origin),
--   remember_refusal(...), remembered_refusal(key)
-- and keeps ctx.state.cache_ttl, .by_fingerprint and .epoch.
-- Options (from ctx.config): cache_size, cache_bytes, refusal_ttl.

local cache = require "util.cache";
local gettime = require "util.time".now;

return function (ctx)
local state = ctx.state;
local cache_size, cache_bytes = ctx.config.cache_size, ctx.config.cache_bytes;
local refusal_ttl = ctx.config.refusal_ttl;
state.cache_ttl = 0;          -- seconds, from the <sessions/> query's cache-ttl (0: no caching)
state.by_fingerprint = false; -- that query's lookup='fingerprint'
state.epoch = 0;              -- bumped whenever anything is forgotten

-- Caches (docs/PLUGIN-PROTOCOL.md, "caching"). The component allows them in
-- the <sessions/> query it sends after each connect (cache-ttl); they hold
-- only while that connection lives, and every change the component makes
-- reaches us as <changed/> or <revoked/> before it is acknowledged. An answer
-- is remembered only if it came on that connection, was asked for on it, and
-- nothing was forgotten while it was on its way (epoch).

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
	state.epoch = state.epoch + 1;
end

local function forget(account)
	state.epoch = state.epoch + 1;
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
	local link = state.link;
	if link == nil then return false; end
	if not ctx.is_component_session(link) then
		module:log("debug", "The component's connection is gone; forgetting the cache");
		state.link, state.cache_ttl, state.by_fingerprint = nil, 0, false;
		forget_all();
		return false;
	end
	return true;
end

local function caching()
	return link_alive() and state.cache_ttl > 0;
end

-- A snapshot taken when a request is sent; may_remember(snap, origin) says
-- whether its answer, which came on origin, may be remembered.
local function snapshot()
	return state.link, state.epoch;
end

local function may_remember(link, sent_epoch, origin)
	return link ~= nil and origin == link and link == state.link and sent_epoch == state.epoch and caching();
end

-- Remembers the refusal of fingerprint with authzid, if the answer (sent
-- at sent_epoch on sent_link, come on origin) may be remembered.
local function remember_refusal(fingerprint, authzid, condition, text, sent_link, sent_epoch, origin)
	if refusal_ttl <= 0 or not may_remember(sent_link, sent_epoch, origin) then return; end
	local ttl = math.min(refusal_ttl, state.cache_ttl);
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

-- Remembers grant (which has max_age) under key (fingerprint .. "\0" ..
-- authzid), indexed by its account.
local function remember_login(key, grant)
	if login_cache:set(key, grant, 256 + #grant.account) then
		local keys = login_keys[grant.account];
		if not keys then
			keys = {};
			login_keys[grant.account] = keys;
		end
		keys[key] = true;
	end
end

-- The component connected (its <sessions/> query, on origin): a new
-- connection starts with an empty cache, allowed for ttl seconds per
-- answer, and may ask lookups by fingerprint.
local function connected(origin, ttl, fingerprints)
	forget_all();
	state.link = origin;
	state.cache_ttl = ttl;
	state.by_fingerprint = fingerprints;
end

ctx.login_cache = login_cache;
ctx.remember_login = remember_login;
ctx.items_cache = items_cache;
ctx.forget = forget;
ctx.forget_all = forget_all;
ctx.connected = connected;
ctx.link_alive = link_alive;
ctx.caching = caching;
ctx.snapshot = snapshot;
ctx.may_remember = may_remember;
ctx.remember_refusal = remember_refusal;
ctx.remembered_refusal = remembered_refusal;
end
