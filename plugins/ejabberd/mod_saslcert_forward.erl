%%% mod_saslcert_forward: client requests: the auth stamp on IQ sets to the
%%% component, and XEP-0257 requests to the account or the server forwarded
%%% in the XEP-0355 wrapper (mod_delegation carries one child only, so the
%%% stamp could not travel with it).
-module(mod_saslcert_forward).

-export([user_send_packet/1]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("mod_saslcert.hrl").

user_send_packet({#iq{type = T, sub_els = Els} = IQ, #{jid := JID} = State}) when T == get; T == set ->
    Host = JID#jid.lserver,
    Comp = mod_saslcert_link:component(Host),
    IQ1 = IQ#iq{sub_els = [E || E <- Els, not is_stamp(E)]},
    To = case IQ1#iq.to of undefined -> jid:remove_resource(JID); J -> J end,
    case {IQ1#iq.sub_els, jid:tolower(To)} of
	{[El], {U, Host, <<>>}} when U == JID#jid.luser; U == <<>> ->
	    case xmpp:get_ns(El) of
		?NS_CERTS -> forward(Host, IQ1#iq{to = To}, El, State), {drop, State};
		_ -> {IQ1, State}
	    end;
	{_, {_, Comp, _}} when T == set ->
	    {IQ1#iq{sub_els = IQ1#iq.sub_els ++ [stamp(Host, State, JID, IQ1#iq.id)]}, State};
	_ -> {IQ1, State}
    end;
user_send_packet(Acc) -> Acc.

is_stamp(#xmlel{name = <<"auth">>} = E) -> fxml:get_tag_attr_s(<<"xmlns">>, E) == mod_saslcert_proto:ns();
is_stamp(_) -> false.

stamp(Host, State, JID, ID) ->
    A = maps:get(saslcert, State, #{method => other, fp => <<>>, manage => true}),
    mod_saslcert_proto:stamp(mod_saslcert_link:get(Host, secret), jid:encode(JID), ID,
			     maps:get(method, A), maps:get(fp, A), maps:get(manage, A)).

%% forward carries a XEP-0257 request to the component in the XEP-0355
%% wrapper, with the stamp next to the payload, and routes the inner answer
%% back to the client without holding its session.
forward(Host, #iq{from = From, id = ID} = IQ, El, State) ->
    Inner0 = xmpp:encode(IQ#iq{sub_els = [El, stamp(Host, State, From, ID)]}, ?NS_CLIENT),
    Inner = fxml:replace_tag_attr(<<"xmlns">>, ?NS_CLIENT, Inner0),
    Wrapper = #xmlel{name = <<"delegation">>, attrs = [{<<"xmlns">>, ?NS_DELEG}],
		     children = [#xmlel{name = <<"forwarded">>, attrs = [{<<"xmlns">>, ?NS_FORWARD}], children = [Inner]}]},
    Reply = fun(Res) -> ejabberd_router:route(forwarded_answer(Host, IQ, Res)) end,
    case mod_saslcert_link:route_to_component(Host, set, Wrapper, Reply, undefined) of
	ok -> ok;
	down -> ejabberd_router:route_error(IQ, unavailable())
    end.

%% unavailable is the error for a request the component cannot take now
%% (away, or its link bounced the request): wait/service-unavailable, as the
%% Prosody plugin answers, so that clients try again later (ejabberd's
%% router would say cancel).
unavailable() ->
    (xmpp:err_service_unavailable(<<"the certificate service is not available">>, <<"en">>))#stanza_error{type = wait}.

forwarded_answer(Host, #iq{from = From, to = To} = IQ, Res) ->
    Fail = fun(Err) -> xmpp:set_from_to(xmpp:make_error(IQ, Err), To, From) end,
    case mod_saslcert_link:answer(Host, Res) of
	{ok, #xmlel{name = <<"delegation">>} = D} ->
	    case [I || #xmlel{name = <<"forwarded">>} = F <- D#xmlel.children,
		       #xmlel{name = <<"iq">>} = I <- F#xmlel.children] of
		[I | _] ->
		    Children = [C || #xmlel{} = C <- I#xmlel.children],
		    case fxml:get_tag_attr_s(<<"type">>, I) of
			<<"result">> -> #iq{type = result, id = IQ#iq.id, from = To, to = From, sub_els = Children};
			<<"error">> -> #iq{type = error, id = IQ#iq.id, from = To, to = From, sub_els = Children};
			_ -> Fail(xmpp:err_service_unavailable())
		    end;
		[] -> Fail(xmpp:err_service_unavailable())
	    end;
	timeout -> Fail(xmpp:err_remote_server_timeout(<<"the certificate service did not answer in time">>, <<"en">>));
	_ -> Fail(unavailable())
    end.
