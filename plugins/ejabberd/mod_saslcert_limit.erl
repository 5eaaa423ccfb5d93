%%% mod_saslcert_limit: certificate lookups per client address.
-module(mod_saslcert_limit).

-export([lookup_allowed/2, source_text/1, sweep_buckets/1]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("mod_saslcert.hrl").

%%% lookups per client address: a token bucket of lookup_burst tokens
%%% refilled at lookup_rate per second, as the Prosody plugin's
%%% saslcert_lookup_burst/_rate: every lookup sent costs a token (a prefetch,
%%% and a login's lookup when no usable prefetch or cached answer stands in
%%% for it); with none left the prefetch is not sent and the login is
%%% refused with temporary-auth-failure. IPv6 addresses share the bucket of
%%% their /64. The buckets live in ?BUCKETS; a bucket that has refilled
%%% completely is the same as none, and the module's process deletes such
%%% buckets every ?SWEEP ms (sweep_buckets), so the table holds only
%%% addresses that asked in the last lookup_burst / lookup_rate + ?SWEEP/1000
%%% seconds. The read and the write of a bucket are not one step: logins
%%% from one address that run at the same moment may each take the same
%%% token, so the limit can be exceeded by the number of such logins.

lookup_allowed(State, Host) ->
    Key = {Host, source(maps:get(ip, State, undefined))},
    Burst = mod_saslcert_link:get(Host, lookup_burst),
    Rate = mod_saslcert_link:get(Host, lookup_rate),
    Now = mod_saslcert_link:now_ms(),
    Tokens = case ets:lookup(?BUCKETS, Key) of
		 [{_, T, At, _}] -> min(Burst, T + (Now - At) * Rate / 1000);
		 [] -> Burst
	     end,
    Left = case Tokens >= 1 of
	       true -> Tokens - 1;
	       false -> Tokens
	   end,
    ets:insert(?BUCKETS, {Key, Left, Now, Now + (Burst - Left) * 1000 / Rate}),
    Tokens >= 1.

%% source is the bucket of a client address: the IPv4 address (an
%% IPv4-mapped IPv6 address counts as IPv4), the /64 of an IPv6 address.
source({{0, 0, 0, 0, 0, 16#ffff, AB, CD}, _Port}) -> {v4, AB bsr 8, AB band 255, CD bsr 8, CD band 255};
source({{A, B, C, D, _, _, _, _}, _Port}) -> {v6, A, B, C, D};
source({{A, B, C, D}, _Port}) -> {v4, A, B, C, D};
source(_) -> unknown.

source_text(State) ->
    case maps:get(ip, State, undefined) of
	{IP, _} when is_tuple(IP) -> list_to_binary(inet:ntoa(IP));
	_ -> <<"an unknown address">>
    end.

%% sweep_buckets deletes the buckets that have refilled completely by Now.
sweep_buckets(Now) ->
    ets:select_delete(?BUCKETS, [{{'_', '_', '_', '$1'}, [{'<', '$1', Now}], [true]}]).
