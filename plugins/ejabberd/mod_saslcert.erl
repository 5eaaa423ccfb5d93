%%% mod_saslcert: saslcert for ejabberd 23.01 (docs/PLUGIN-PROTOCOL.md).
%%%
%%% ejabberd checks the client certificate's chain against c2s_cafile and
%%% picks the account (xmpp_stream_pkix); this module then asks the saslcert
%%% component, over the component link, whether that certificate may log in
%%% as that account (c2s_auth_result), and refuses the login unless the
%%% component says yes: unknown, disabled, revoked, expired certificates and
%%% certificates without an xmppAddr naming the account are refused; no
%%% answer, a timeout or the component being away refuse with
%%% temporary-auth-failure. It forces the resource of full-JID certificates
%%% at bind, tells the component of bound and closed sessions, closes live
%%% sessions when told a certificate was revoked or disabled, stamps users'
%%% requests with how they logged in (auth stamp), forwards XEP-0257 requests
%%% sent to the account or the server in the XEP-0355 wrapper (the stamp
%%% cannot travel through mod_delegation, which carries one child only), and
%%% tells the component when accounts are registered and removed. Answers
%%% to its own requests are believed only from the configured component JID
%%% and only for a request it has outstanding.
%%%
%%% This module is the gen_mod and its gen_server (options, the tables, the
%%% hooks, sending the account events queue and the session notices batch)
%%% and the login decision. Its parts: mod_saslcert_link (the component
%%% link), mod_saslcert_cache, mod_saslcert_prefetch (the lookup before
%%% <auth/>), mod_saslcert_limit (lookups per address),
%%% mod_saslcert_sessions, mod_saslcert_requests (the component's requests),
%%% mod_saslcert_forward (auth stamps, XEP-0257 forwarding),
%%% mod_saslcert_events (the account events queue, in Mnesia); the wire
%%% format is in mod_saslcert_proto, the tables' names in mod_saslcert.hrl.
-module(mod_saslcert).
-behaviour(gen_mod).
-behaviour(gen_server).

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1, mod_doc/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).
-export([c2s_auth_result/3, remove_user/2, register_user/2, flush_notices/1]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("mod_saslcert.hrl").

-define(RETRY, 30000).
-define(NOTICE_BATCH_MAX, 100).

%%% gen_mod

start(Host, Opts) ->
    case {gen_mod:get_opt(component, Opts), read_secret(gen_mod:get_opt(secret_file, Opts))} of
	{undefined, _} -> {error, <<"mod_saslcert: the option 'component' is required">>};
	{_, {error, Why}} -> {error, Why};
	{_, {ok, _}} -> gen_mod:start_child(?MODULE, Host, Opts)
    end.

stop(Host) -> gen_mod:stop_child(?MODULE, Host).

reload(_Host, _NewOpts, _OldOpts) -> ok.

depends(_Host, _Opts) -> [].

mod_opt_type(component) -> econf:domain();
mod_opt_type(secret_file) -> econf:file();
mod_opt_type(timeout) -> econf:timeout(second);
mod_opt_type(cache) -> econf:bool();
mod_opt_type(notice_delay) -> econf:non_neg_int();
mod_opt_type(prefetch) -> econf:bool();
mod_opt_type(lookup_burst) -> econf:pos_int();
mod_opt_type(lookup_rate) -> econf:number(0.001).  % > 0: a typo like 0 fails at start, never silently replaced

mod_options(_Host) ->
    [{component, undefined}, {secret_file, undefined}, {timeout, timer:seconds(5)}, {cache, true},
     {notice_delay, 50}, {prefetch, true}, {lookup_burst, 50}, {lookup_rate, 5}].

mod_doc() -> #{desc => ["saslcert: client certificate logins decided by the saslcert component."]}.

read_secret(undefined) -> {error, <<"mod_saslcert: the option 'secret_file' is required">>};
read_secret(File) ->
    case file:read_file(File) of
	{ok, B} ->
	    %% The first line without surrounding white space, as saslcert serve reads it.
	    case string:trim(hd(binary:split(B, <<"\n">>))) of
		<<>> -> {error, <<"mod_saslcert: the first line of the secret file is empty">>};
		S -> {ok, S}
	    end;
	{error, E} -> {error, iolist_to_binary(io_lib:format("mod_saslcert: cannot read ~ts: ~p", [File, E]))}
    end.

%%% gen_server: owns the tables, the hooks, the sending of the account
%%% events queue (mod_saslcert_events, in Mnesia) and the session notices
%%% batch.

%% notices: the session notices not sent yet, newest first; notice_timer:
%% set while a batch waits for its notice_delay (milliseconds).
%% sending: the key of the account event whose answer is awaited, or none.
-record(state, {host, sending = none, notices = [], notice_timer}).

init([Host | _]) ->
    process_flag(trap_exit, true),
    Opts = gen_mod:get_module_opts(Host, ?MODULE),
    {ok, Secret} = read_secret(gen_mod:get_opt(secret_file, Opts)),
    lists:foreach(fun(T) -> ensure_table(T) end, [?SESSIONS, ?CACHE, ?LINK, ?PREFETCH, ?BUCKETS]),
    ok = mod_saslcert_events:init(),
    mod_saslcert_link:set(Host, component, gen_mod:get_opt(component, Opts)),
    mod_saslcert_link:set(Host, secret, Secret),
    mod_saslcert_link:set(Host, timeout, gen_mod:get_opt(timeout, Opts)),
    mod_saslcert_link:set(Host, cache, gen_mod:get_opt(cache, Opts)),
    mod_saslcert_link:set(Host, notice_delay, gen_mod:get_opt(notice_delay, Opts)),
    mod_saslcert_link:set(Host, prefetch, gen_mod:get_opt(prefetch, Opts)),
    mod_saslcert_link:set(Host, lookup_burst, gen_mod:get_opt(lookup_burst, Opts)),
    mod_saslcert_link:set(Host, lookup_rate, gen_mod:get_opt(lookup_rate, Opts)),
    mod_saslcert_link:set(Host, cache_ttl, 0),
    mod_saslcert_link:set(Host, by_fingerprint, false),
    mod_saslcert_link:set(Host, forgets, 0),
    %% Loaded before they are named: gen_iq_handler asks
    %% erlang:function_exported/3 (false for a module not loaded yet)
    %% whether mod_saslcert_requests decodes its own payloads.
    [{module, _} = code:ensure_loaded(M) || M <- parts()],
    [ejabberd_hooks:add(Hook, Host, M, F, Prio) || {Hook, M, F, Prio} <- hooks()],
    [ejabberd_hooks:add(Hook, M, F, Prio) || {Hook, M, F, Prio} <- global_hooks()],
    gen_iq_handler:add_iq_handler(ejabberd_local, Host, mod_saslcert_proto:ns(), mod_saslcert_requests, process_iq),
    erlang:send_after(?SWEEP, self(), sweep),
    {ok, #state{host = Host}}.

%% hooks are the module's hooks on each host, global_hooks those it adds
%% once for all hosts: {Hook, Module, Function, Priority}.
hooks() ->
    [{c2s_auth_result, ?MODULE, c2s_auth_result, 40},
     {c2s_stream_started, mod_saslcert_prefetch, c2s_stream_started, 50},
     {c2s_handle_info, mod_saslcert_prefetch, c2s_handle_info, 10},
     {c2s_session_opened, mod_saslcert_sessions, c2s_session_opened, 1},
     {c2s_terminated, mod_saslcert_sessions, c2s_terminated, 90},
     {user_send_packet, mod_saslcert_forward, user_send_packet, 1},
     {remove_user, ?MODULE, remove_user, 50},
     {register_user, ?MODULE, register_user, 50}].

parts() ->
    [mod_saslcert_link, mod_saslcert_cache, mod_saslcert_prefetch, mod_saslcert_limit, mod_saslcert_sessions,
     mod_saslcert_requests, mod_saslcert_forward, mod_saslcert_events, mod_saslcert_proto].

global_hooks() ->
    [{component_connected, mod_saslcert_link, component_connected, 60},
     {component_disconnected, mod_saslcert_link, component_disconnected, 60}].

ensure_table(T) ->
    case ets:info(T, name) of
	undefined -> ets:new(T, [named_table, public, set]);
	_ -> T
    end.

terminate(_Reason, #state{host = Host} = S) ->
    send_notices(S),
    [ejabberd_hooks:delete(Hook, Host, M, F, Prio) || {Hook, M, F, Prio} <- hooks()],
    case gen_mod:is_loaded_elsewhere(Host, ?MODULE) of
	false -> [ejabberd_hooks:delete(Hook, M, F, Prio) || {Hook, M, F, Prio} <- global_hooks()];
	true -> ok
    end,
    gen_iq_handler:remove_iq_handler(ejabberd_local, Host, mod_saslcert_proto:ns()),
    mod_saslcert_cache:flush(Host),
    hand_over_tables(Host),
    ok.

%% hand_over_tables gives the tables this host's process owns (the first
%% host's process creates them for all hosts) to the module's process of
%% another host that still runs it, so that stopping or reloading one host's
%% module does not take the other hosts' sessions, cache, link state and
%% prefetch answers with it. With no other host left they go with this
%% process. The receiver ignores the 'ETS-TRANSFER' message (handle_info).
hand_over_tables(Host) ->
    Heirs = [Pid || H <- ejabberd_option:hosts(), H /= Host, gen_mod:is_loaded(H, ?MODULE),
		    Pid <- [whereis(gen_mod:get_module_proc(H, ?MODULE))], is_pid(Pid), Pid /= self()],
    case Heirs of
	[Heir | _] ->
	    [ets:give_away(T, Heir, saslcert) || T <- [?SESSIONS, ?CACHE, ?LINK, ?PREFETCH, ?BUCKETS],
						 ets:info(T, owner) == self()],
	    ok;
	[] -> ok
    end.

handle_call(flush_notices, _From, S) -> {reply, ok, send_notices(S)};
handle_call(_Req, _From, S) -> {reply, ok, S}.

handle_cast(kick, S) -> {noreply, send_event(S)};
handle_cast({notice, N}, #state{host = Host, notices = Ns} = S) ->
    S1 = S#state{notices = [N | Ns]},
    case {length(Ns) + 1 >= ?NOTICE_BATCH_MAX, mod_saslcert_link:get(Host, notice_delay), S#state.notice_timer} of
	{true, _, _} -> {noreply, send_notices(S1)};
	{_, 0, _} -> {noreply, send_notices(S1)};
	{_, _, undefined} -> {noreply, S1#state{notice_timer = erlang:send_after(mod_saslcert_link:get(Host, notice_delay), self(), send_notices)}};
	_ -> {noreply, S1}
    end;
handle_cast(_Msg, S) -> {noreply, S}.

handle_info({iq_reply, Res, {account_event, Key}}, #state{host = Host, sending = Key} = S) ->
    S1 = S#state{sending = none},
    case mod_saslcert_link:answer(Host, Res) of
	{ok, _} -> mod_saslcert_events:delete(Key), {noreply, send_event(S1)};
	{error, #xmlel{} = Err} ->
	    case fxml:get_tag_attr_s(<<"type">>, Err) of
		<<"wait">> -> retry_later(S1);
		_ ->
		    ?WARNING_MSG("saslcert: the component refused an account event: ~ts", [fxml:element_to_binary(Err)]),
		    mod_saslcert_events:delete(Key),
		    {noreply, send_event(S1)}
	    end;
	_ -> retry_later(S1)
    end;
handle_info(retry, S) -> {noreply, send_event(S)};
handle_info(send_notices, S) -> {noreply, send_notices(S#state{notice_timer = undefined})};
handle_info(sweep, S) ->
    %% The tables are shared by all hosts: only their owner sweeps them.
    case ets:info(?PREFETCH, owner) == self() of
	true -> mod_saslcert_prefetch:sweep_prefetched(mod_saslcert_link:now_ms()), mod_saslcert_limit:sweep_buckets(mod_saslcert_link:now_ms());
	false -> ok
    end,
    erlang:send_after(?SWEEP, self(), sweep),
    {noreply, S};
handle_info(_Info, S) -> {noreply, S}.

code_change(_Old, S, _Extra) -> {ok, S}.

retry_later(S) ->
    erlang:send_after(?RETRY, self(), retry),
    {noreply, S}.

%% send_event sends the oldest queued account event, one at a time, in
%% order; it stays queued until the component has answered it.
send_event(#state{sending = {_, _}} = S) -> S;
send_event(#state{host = Host} = S) ->
    case mod_saslcert_events:first(Host) of
	empty -> S;
	{Key, {Kind, JID}} ->
	    case mod_saslcert_link:route_to_component(Host, set, mod_saslcert_proto:account_event(Kind, JID), {account_event, Key}, self()) of
		ok -> S#state{sending = Key};
		down -> S  % sent again at the next <sessions/> query (kick)
	    end
    end.

%%% login

c2s_auth_result(#{sasl_mech := <<"EXTERNAL">>, lserver := Host, socket := Socket} = State, true, User) ->
    case xmpp_socket:get_peer_certificate(Socket, der) of
	{ok, DER} -> decide(State, Host, User, DER);
	_ -> refuse(State, 'not-authorized', <<"no client certificate">>)
    end;
c2s_auth_result(State, true, _User) ->
    State#{saslcert => #{method => other, fp => <<>>, manage => true}};
c2s_auth_result(State, _, _User) ->
    State.

decide(State0, Host, User, DER) ->
    Account = <<User/binary, "@", Host/binary>>,
    FP = mod_saslcert_proto:fingerprint(DER),
    Prefetch = maps:get(saslcert_prefetch, State0, none),
    State = maps:remove(saslcert_prefetch, State0),
    case jid:nodeprep(User) of
	User ->
	    case mod_saslcert_cache:cached(Host, FP, Account) of
		{ok, R} -> grant(State, Account, FP, R);
		miss ->
		    case mod_saslcert_prefetch:prefetched(Host, Account, FP, Prefetch) of
			{ok, R} -> grant(State, Account, FP, R);
			timeout -> refuse(State, 'temporary-auth-failure', <<"the certificate service is not available">>);
			ask -> lookup(State, Host, Account, FP, DER)
		    end
	    end;
	_ -> refuse(State, 'not-authorized', <<"the account name is not in its canonical form">>)
    end.

lookup(State, Host, Account, FP, DER) ->
    case mod_saslcert_limit:lookup_allowed(State, Host) of
	true -> lookup_now(State, Host, Account, FP, DER);
	false ->
	    ?INFO_MSG("saslcert: too many certificate lookups from ~ts; login as ~ts refused",
		      [mod_saslcert_limit:source_text(State), Account]),
	    refuse(State, 'temporary-auth-failure', <<"Too many certificate logins from your address; try again later">>)
    end.

lookup_now(State, Host, Account, FP, DER) ->
    Forgets = mod_saslcert_link:get(Host, forgets),
    Answer = case mod_saslcert_link:ask(Host, mod_saslcert_link:first_lookup(Host, FP, DER, Account)) of
		 {error, Err} = E ->
		     case mod_saslcert_link:get(Host, by_fingerprint) andalso mod_saslcert_proto:decode_lookup_error(Err) of
			 item_not_found -> mod_saslcert_link:ask(Host, mod_saslcert_proto:lookup_by_cert(DER, Account));
			 _ -> E
		     end;
		 Other -> Other
	     end,
    case Answer of
	{ok, #xmlel{} = P} ->
	    case mod_saslcert_proto:decode_lookup_result(P) of
		{ok, R} ->
		    mod_saslcert_cache:remember(Host, FP, Account, R, Forgets),
		    grant(State, Account, FP, R);
		{error, Why} ->
		    ?WARNING_MSG("saslcert: malformed lookup answer: ~ts", [Why]),
		    refuse(State, 'temporary-auth-failure', <<"the certificate service answered wrongly">>)
	    end;
	{error, Err2} ->
	    case mod_saslcert_proto:decode_lookup_error(Err2) of
		{refused, Cond} -> refuse(State, Cond, error_text(Err2));
		_ -> refuse(State, 'temporary-auth-failure', <<"the certificate service cannot decide now">>)
	    end;
	_ ->
	    refuse(State, 'temporary-auth-failure', <<"the certificate service is not available">>)
    end.

error_text(Err) ->
    case fxml:get_subtag(Err, <<"text">>) of
	false -> <<"this certificate may not log in">>;
	T -> fxml:get_tag_cdata(T)
    end.

%% grant lets the login through if the component named the same account
%% ejabberd picked, remembering what the session needs later.
grant(State, Account, FP, #{jid := Account, resource := Res, no_cert_management := NCM}) ->
    case Res == undefined orelse jid:resourceprep(Res) == Res of
	true -> State#{saslcert => #{method => certificate, fp => FP, manage => not NCM, resource => Res}};
	false -> refuse(State, 'not-authorized', <<"the certificate's resource is not in its canonical form">>)
    end;
grant(State, Account, _FP, #{jid := Other}) ->
    ?WARNING_MSG("saslcert: the component granted ~ts for a login as ~ts; refused", [Other, Account]),
    refuse(State, 'not-authorized', <<"the certificate names another account">>).

%% refuse sends the SASL failure and ends the stream, so that the success
%% that would follow is never sent.
refuse(State, Cond, Text) ->
    State1 = ejabberd_c2s:send(State, #sasl_failure{reason = Cond, text = xmpp:mk_text(Text, <<"en">>)}),
    State2 = case maps:get(stream_state, State1, undefined) == disconnected of
		 true -> State1;
		 false -> ejabberd_c2s:send(State1, xmpp:serr_not_authorized(<<"certificate login refused">>, <<"en">>))
	     end,
    {stop, State2}.

%%% session notices batch (the gen_server's part)

%% send_notices sends the queued notices in order. With no route to the
%% component they are dropped: its <sessions/> query on connect repairs
%% the list.
send_notices(#state{notices = []} = S) -> cancel_notice_timer(S);
send_notices(#state{host = Host, notices = Ns} = S) ->
    Comp = mod_saslcert_link:component(Host),
    case ejabberd_router:is_my_route(Comp) of
	true ->
	    ejabberd_router:route(#message{type = normal, from = jid:make(Host), to = jid:make(Comp),
					   sub_els = [mod_saslcert_proto:notices(lists:reverse(Ns))]});
	false -> ok
    end,
    cancel_notice_timer(S#state{notices = []}).

%% flush_notices has the module's process send the queued session notices
%% now (see <changed/>). If it does not answer in time, the answer goes
%% without: the component may then close a session bound just before a
%% disable, which it would otherwise keep.
flush_notices(Host) ->
    try gen_server:call(gen_mod:get_module_proc(Host, ?MODULE), flush_notices, 2000)
    catch exit:Why -> ?WARNING_MSG("saslcert: could not send the queued session notices: ~p", [Why])
    end.

cancel_notice_timer(#state{notice_timer = undefined} = S) -> S;
cancel_notice_timer(#state{notice_timer = T} = S) ->
    _ = erlang:cancel_timer(T),
    receive send_notices -> ok after 0 -> ok end,
    S#state{notice_timer = undefined}.

%%% account events

remove_user(User, Server) -> account_event(Server, deleted, User).
register_user(User, Server) -> account_event(Server, created, User).

%% account_event queues the event in Mnesia before the hook returns (see
%% mod_saslcert_events) and wakes the module's process to send it.
account_event(Server, Kind, User) ->
    Host = jid:nameprep(Server),
    JID = <<User/binary, "@", Host/binary>>,
    case mod_saslcert_events:push(Host, Kind, JID) of
	ok -> ok;
	{error, Why} ->
	    %% The reconciliation repairs a lost deletion unless the name is
	    %% registered again before it runs.
	    ?ERROR_MSG("saslcert: cannot queue the account event ~ts ~ts: ~p", [Kind, JID, Why])
    end,
    gen_server:cast(gen_mod:get_module_proc(Host, ?MODULE), kick),
    ok.
