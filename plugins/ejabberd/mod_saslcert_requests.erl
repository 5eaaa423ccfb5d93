%%% mod_saslcert_requests: the plugin protocol's requests from the component
%%% (<sessions/>, <changed/>, <revoked/>, <disabled/>, <accounts/>), believed
%%% only from the configured component JID.
-module(mod_saslcert_requests).

-export([process_iq/1, decode_iq_subel/1]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("mod_saslcert.hrl").

decode_iq_subel(El) -> El.

process_iq(#iq{from = From, to = To, sub_els = [#xmlel{} = El]} = IQ) ->
    Host = To#jid.lserver,
    case jid:tolower(From) == {<<>>, mod_saslcert_link:component(Host), <<>>} of
	true -> handle(Host, IQ, El);
	false -> xmpp:make_error(IQ, xmpp:err_forbidden(<<"only the saslcert component may send this">>, <<"en">>))
    end;
process_iq(IQ) ->
    xmpp:make_error(IQ, xmpp:err_bad_request()).

handle(Host, #iq{type = get} = IQ, #xmlel{name = <<"sessions">>} = El) ->
    case mod_saslcert_proto:decode_sessions_query(El) of
	{ok, #{fingerprint_lookup := ByFP, cache_ttl := TTL}} ->
	    mod_saslcert_cache:flush(Host),
	    mod_saslcert_link:set(Host, by_fingerprint, ByFP),
	    mod_saslcert_link:set(Host, cache_ttl, TTL),
	    mod_saslcert_cache:flush(Host),
	    gen_server:cast(gen_mod:get_module_proc(Host, mod_saslcert), kick),
	    Sessions = [{Full, FP} || {_, H, Full, FP} <- ets:tab2list(?SESSIONS), H == Host],
	    xmpp:make_iq_result(IQ, mod_saslcert_proto:sessions_result(Sessions));
	{error, _} -> xmpp:make_error(IQ, xmpp:err_bad_request())
    end;
handle(Host, #iq{type = set} = IQ, #xmlel{name = <<"changed">>} = El) ->
    case mod_saslcert_proto:decode_notice(changed, El) of
	{ok, #{jid := Account}} ->
	    mod_saslcert_cache:forget(Host, Account),
	    %% The sessions bound so far reach the component before this
	    %% answer, which tells it that they bound before the change
	    %% (component/boundorder.go): the sessions of a certificate being
	    %% disabled stay. The module's process routes the batch to the
	    %% component's connection before the call returns; this answer is
	    %% routed to it after.
	    mod_saslcert:flush_notices(Host),
	    xmpp:make_iq_result(IQ);
	_ -> xmpp:make_error(IQ, xmpp:err_bad_request())
    end;
handle(Host, #iq{type = set} = IQ, #xmlel{name = <<"revoked">>} = El) ->
    case mod_saslcert_proto:decode_notice(revoked, El) of
	{ok, #{jid := Account, fingerprint := FP}} ->
	    mod_saslcert_cache:forget(Host, Account),
	    N = mod_saslcert_sessions:close_sessions(Host, fun(Full, F) -> F == FP andalso mod_saslcert_sessions:bare(Full) == Account end,
			       <<"This client certificate has been revoked.">>),
	    xmpp:make_iq_result(IQ, mod_saslcert_proto:revoked_result(N));
	_ -> xmpp:make_error(IQ, xmpp:err_bad_request())
    end;
handle(Host, #iq{type = set} = IQ, #xmlel{name = <<"disabled">>} = El) ->
    case mod_saslcert_proto:decode_notice(disabled, El) of
	{ok, #{jid := Full, fingerprint := FP}} ->
	    mod_saslcert_cache:forget(Host, mod_saslcert_sessions:bare(Full)),
	    N = mod_saslcert_sessions:close_sessions(Host, fun(F, P) -> P == FP andalso F == Full end,
			       <<"This client certificate has been disabled.">>),
	    xmpp:make_iq_result(IQ, mod_saslcert_proto:disabled_result(N));
	_ -> xmpp:make_error(IQ, xmpp:err_bad_request())
    end;
handle(Host, #iq{type = get} = IQ, #xmlel{name = <<"accounts">>} = El) ->
    case mod_saslcert_proto:decode_accounts_query(El) of
	{ok, JIDs} -> xmpp:make_iq_result(IQ, mod_saslcert_proto:accounts_result([{J, exists(Host, J)} || J <- JIDs]));
	{error, too_many} -> xmpp:make_error(IQ, xmpp:err_policy_violation());
	_ -> xmpp:make_error(IQ, xmpp:err_bad_request())
    end;
handle(_Host, IQ, _El) ->
    xmpp:make_error(IQ, xmpp:err_feature_not_implemented()).

%% exists answers false only where the accounts store confirms the absence
%% (ejabberd's own stores: mnesia, SQL).
exists(Host, J) ->
    try jid:decode(J) of
	#jid{user = U, luser = U, lserver = Host, server = Host, resource = <<>>} when U /= <<>> ->
	    case {ejabberd_auth:user_exists(U, Host), ejabberd_auth:auth_modules(Host)} of
		{true, _} -> true;
		{false, Mods} ->
		    case Mods -- [ejabberd_auth_mnesia, ejabberd_auth_sql] of
			[] -> false;
			_ -> unknown
		    end
	    end;
	_ -> unknown
    catch _:_ -> unknown
    end.
