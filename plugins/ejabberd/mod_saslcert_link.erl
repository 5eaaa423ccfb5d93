%%% mod_saslcert_link: the module's link to the saslcert component: its
%%% settings per host (the ?LINK table), the round trips (route_to_component,
%%% ask, answer: an answer is believed only from the configured component
%%% JID), the lookup to send, and what happens when the component's
%%% connection comes and goes (a second connection is refused).
-module(mod_saslcert_link).

-export([get/2, set/3, component/1, route_to_component/5, answer/2, ask/2, now_ms/0, first_lookup/4,
	 component_connected/1, component_disconnected/2]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("ejabberd_router.hrl").
-include("mod_saslcert.hrl").

get(Host, What) ->
    case ets:lookup(?LINK, {Host, What}) of
	[{_, V}] -> V;
	[] -> undefined
    end.

set(Host, What, V) -> ets:insert(?LINK, {{Host, What}, V}).

component(Host) -> get(Host, component).

%% route_to_component sends an IQ from the host to the component; the answer
%% (or timeout) comes to Proc as {iq_reply, Res, Ctx}. down: no route.
route_to_component(Host, Type, Payload, Ctx, Proc) ->
    Comp = component(Host),
    case ejabberd_router:is_my_route(Comp) of
	true ->
	    IQ = #iq{type = Type, from = jid:make(Host), to = jid:make(Comp), sub_els = [Payload]},
	    ejabberd_router:route_iq(IQ, Ctx, Proc, get(Host, timeout)),
	    ok;
	false -> down
    end.

%% answer checks that a reply to one of our requests comes from the
%% configured component (another route answering with a guessed or leaked id
%% is not believed) and returns {ok, Payload | none}, {error, ErrorEl},
%% timeout or forged.
answer(Host, #iq{from = From, type = T, sub_els = Els}) ->
    Comp = component(Host),
    case jid:tolower(From) of
	{<<>>, Comp, <<>>} ->
	    case {T, [E || #xmlel{} = E <- [to_xmlel(X) || X <- Els]]} of
		{result, [P | _]} -> {ok, P};
		{result, []} -> {ok, none};
		{error, Es} ->
		    case [E || #xmlel{name = <<"error">>} = E <- Es] of
			[Err | _] -> {error, Err};
			[] -> {error, #xmlel{name = <<"error">>, attrs = [{<<"type">>, <<"cancel">>}]}}
		    end;
		_ -> forged
	    end;
	_ ->
	    ?WARNING_MSG("saslcert: ignored an answer to a request for ~ts from ~ts", [Comp, jid:encode(From)]),
	    forged
    end;
answer(_Host, timeout) -> timeout.

to_xmlel(#xmlel{} = E) -> E;
to_xmlel(Rec) -> try xmpp:encode(Rec) catch _:_ -> none end.

%% ask sends Payload and waits in the calling process for the answer.
ask(Host, Payload) ->
    Ref = make_ref(),
    case route_to_component(Host, get, Payload, Ref, self()) of
	down -> down;
	ok ->
	    receive {iq_reply, Res, Ref} -> answer(Host, Res)
	    after get(Host, timeout) + 2000 -> timeout
	    end
    end.

%% component_connected and component_disconnected run in the
%% ejabberd_service process of the connection (after it registered its
%% route, after it removed it).
component_connected(Comp) ->
    case hosts_of(Comp) /= [] andalso other_links(Comp) of
	[_ | _] = Others ->
	    %% ejabberd would spread the component's traffic over both
	    %% connections: lookups answered by a second saslcert serve
	    %% (another store, an old copy) and session notices split between
	    %% two registries. Refused as Prosody refuses it: the first stays.
	    ?ERROR_MSG("saslcert: refused a second connection as the component ~ts (conflict): ~p is connected already; "
		       "is another saslcert serve running for this server?", [Comp, Others]),
	    ejabberd_service:send(self(), xmpp:serr_conflict(<<"Component already connected">>, <<"en">>));
	_ -> on_link_change(Comp)
    end,
    ok.

component_disconnected(Comp, _Reason) ->
    case hosts_of(Comp) /= [] andalso other_links(Comp) of
	[_ | _] -> ok;  % a refused second connection went: the link stays
	_ -> on_link_change(Comp)
    end,
    ok.

%% hosts_of are the hosts whose module talks to the component Comp.
hosts_of(Comp) -> [H || {{H, component}, C} <- ets:tab2list(?LINK), C == Comp].

%% other_links are the processes of the other connections that serve Comp.
other_links(Comp) ->
    Backend = ejabberd_router:get_backend(),
    case Backend:find_routes(Comp) of
	{ok, Routes} -> [P || #route{pid = P} <- Routes, is_pid(P), P /= self()];
	_ -> []
    end.

on_link_change(Comp) ->
    [begin set(Host, cache_ttl, 0), mod_saslcert_cache:flush(Host) end || Host <- hosts_of(Comp)],
    ok.

now_ms() -> erlang:monotonic_time(millisecond).

first_lookup(Host, FP, DER, Authzid) ->
    case get(Host, by_fingerprint) of
	true -> mod_saslcert_proto:lookup_by_fingerprint(FP, Authzid);
	_ -> mod_saslcert_proto:lookup_by_cert(DER, Authzid)
    end.
