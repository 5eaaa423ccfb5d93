%%% mod_saslcert_cache: positive lookup answers, keyed by fingerprint (the
%%% Prosody plugin's rules: only after the component announced cache-ttl on
%%% the current connection, for at most max-age, never kept if anything was
%%% forgotten while the answer was on its way; forgotten per account at
%%% <changed/>, <revoked/>, <disabled/>, and entirely at every <sessions/>
%%% query and when the link connects or drops).
-module(mod_saslcert_cache).

-export([flush/1, forget/2, cached/3, remember/5]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("mod_saslcert.hrl").

flush(Host) ->
    forgot(Host),
    ets:match_delete(?CACHE, {{Host, '_'}, '_', '_', '_'}).

forget(Host, Account) ->
    forgot(Host),
    ets:match_delete(?CACHE, {{Host, '_'}, Account, '_', '_'}).

forgot(Host) -> ets:update_counter(?LINK, {Host, forgets}, 1, {{Host, forgets}, 0}).

cached(Host, FP, Account) ->
    case mod_saslcert_link:get(Host, cache_ttl) > 0 andalso ets:lookup(?CACHE, {Host, FP}) of
	[{_, Account, Result, Expires}] ->
	    case mod_saslcert_link:now_ms() < Expires of
		true -> {ok, Result};
		false -> miss
	    end;
	_ -> miss
    end.

%% remember keeps a positive answer unless something was forgotten since
%% Forgets was read (the answer may predate the change).
remember(Host, FP, Account, #{max_age := Age} = Result, Forgets) ->
    TTL = min(Age, mod_saslcert_link:get(Host, cache_ttl)),
    case mod_saslcert_link:get(Host, cache) andalso TTL > 0 andalso mod_saslcert_link:get(Host, forgets) == Forgets of
	true ->
	    Key = {Host, FP},
	    ets:insert(?CACHE, {Key, Account, Result, mod_saslcert_link:now_ms() + TTL * 1000}),
	    case mod_saslcert_link:get(Host, forgets) of
		Forgets -> ok;
		_ -> ets:delete(?CACHE, Key)
	    end;
	false -> ok
    end.
