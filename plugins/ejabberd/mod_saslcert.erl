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
%%% Caching follows the Prosody plugin's rules: only after the component
%%% announced cache-ttl on the current connection, for at most max-age,
%%% never kept if anything was forgotten while the answer was on its way;
%%% forgotten per account at <changed/>, <revoked/>, <disabled/>, and
%%% entirely at every <sessions/> query and when the link connects or
%%% drops.
%%%
%%% The wire format is in mod_saslcert_proto.
-module(mod_saslcert).
-behaviour(gen_mod).
-behaviour(gen_server).

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1, mod_doc/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).
-export([c2s_auth_result/3, c2s_stream_started/2, c2s_handle_info/2, c2s_session_opened/1, c2s_terminated/2, user_send_packet/1,
	 remove_user/2, register_user/2, component_connected/1, component_disconnected/2,
	 process_iq/1, decode_iq_subel/1]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("ejabberd_router.hrl").

-define(NS_CERTS, <<"urn:xmpp:saslcert:1">>).
-define(NS_DELEG, <<"urn:xmpp:delegation:1">>).
-define(SESSIONS, mod_saslcert_sessions).   % Pid -> {Host, FullJID, FP}
-define(CACHE, mod_saslcert_cache).         % {Host, FP} -> {Account, Result, Expires}
-define(LINK, mod_saslcert_link).           % {Host, What} -> Value
-define(RETRY, 30000).
-define(NOTICE_BATCH_MAX, 100).
-define(PREFETCH, mod_saslcert_prefetch).   % Ref -> {Ref, prefetch answer (or timeout), SweepAfter}
-define(PREFETCH_KEEP, 2000).  % ms an answer is kept beyond `timeout` after it was written
-define(SWEEP, 10000).         % ms between sweeps of ?PREFETCH and ?BUCKETS
-define(BUCKETS, mod_saslcert_buckets).     % {Host, Source} -> {Key, Tokens, AtMs, FullAtMs}

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
    set(Host, component, gen_mod:get_opt(component, Opts)),
    set(Host, secret, Secret),
    set(Host, timeout, gen_mod:get_opt(timeout, Opts)),
    set(Host, cache, gen_mod:get_opt(cache, Opts)),
    set(Host, notice_delay, gen_mod:get_opt(notice_delay, Opts)),
    set(Host, prefetch, gen_mod:get_opt(prefetch, Opts)),
    set(Host, lookup_burst, gen_mod:get_opt(lookup_burst, Opts)),
    set(Host, lookup_rate, gen_mod:get_opt(lookup_rate, Opts)),
    set(Host, cache_ttl, 0),
    set(Host, by_fingerprint, false),
    set(Host, forgets, 0),
    ejabberd_hooks:add(c2s_auth_result, Host, ?MODULE, c2s_auth_result, 40),
    ejabberd_hooks:add(c2s_stream_started, Host, ?MODULE, c2s_stream_started, 50),
    ejabberd_hooks:add(c2s_handle_info, Host, ?MODULE, c2s_handle_info, 10),
    ejabberd_hooks:add(c2s_session_opened, Host, ?MODULE, c2s_session_opened, 1),
    ejabberd_hooks:add(c2s_terminated, Host, ?MODULE, c2s_terminated, 90),
    ejabberd_hooks:add(user_send_packet, Host, ?MODULE, user_send_packet, 1),
    ejabberd_hooks:add(remove_user, Host, ?MODULE, remove_user, 50),
    ejabberd_hooks:add(register_user, Host, ?MODULE, register_user, 50),
    ejabberd_hooks:add(component_connected, ?MODULE, component_connected, 60),
    ejabberd_hooks:add(component_disconnected, ?MODULE, component_disconnected, 60),
    gen_iq_handler:add_iq_handler(ejabberd_local, Host, mod_saslcert_proto:ns(), ?MODULE, process_iq),
    erlang:send_after(?SWEEP, self(), sweep),
    {ok, #state{host = Host}}.

ensure_table(T) ->
    case ets:info(T, name) of
	undefined -> ets:new(T, [named_table, public, set]);
	_ -> T
    end.

terminate(_Reason, #state{host = Host} = S) ->
    send_notices(S),
    ejabberd_hooks:delete(c2s_auth_result, Host, ?MODULE, c2s_auth_result, 40),
    ejabberd_hooks:delete(c2s_stream_started, Host, ?MODULE, c2s_stream_started, 50),
    ejabberd_hooks:delete(c2s_handle_info, Host, ?MODULE, c2s_handle_info, 10),
    ejabberd_hooks:delete(c2s_session_opened, Host, ?MODULE, c2s_session_opened, 1),
    ejabberd_hooks:delete(c2s_terminated, Host, ?MODULE, c2s_terminated, 90),
    ejabberd_hooks:delete(user_send_packet, Host, ?MODULE, user_send_packet, 1),
    ejabberd_hooks:delete(remove_user, Host, ?MODULE, remove_user, 50),
    ejabberd_hooks:delete(register_user, Host, ?MODULE, register_user, 50),
    case gen_mod:is_loaded_elsewhere(Host, ?MODULE) of
	false ->
	    ejabberd_hooks:delete(component_connected, ?MODULE, component_connected, 60),
	    ejabberd_hooks:delete(component_disconnected, ?MODULE, component_disconnected, 60);
	true -> ok
    end,
    gen_iq_handler:remove_iq_handler(ejabberd_local, Host, mod_saslcert_proto:ns()),
    flush(Host),
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
    case {length(Ns) + 1 >= ?NOTICE_BATCH_MAX, get(Host, notice_delay), S#state.notice_timer} of
	{true, _, _} -> {noreply, send_notices(S1)};
	{_, 0, _} -> {noreply, send_notices(S1)};
	{_, _, undefined} -> {noreply, S1#state{notice_timer = erlang:send_after(get(Host, notice_delay), self(), send_notices)}};
	_ -> {noreply, S1}
    end;
handle_cast(_Msg, S) -> {noreply, S}.

handle_info({iq_reply, Res, {account_event, Key}}, #state{host = Host, sending = Key} = S) ->
    S1 = S#state{sending = none},
    case answer(Host, Res) of
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
	true -> sweep_prefetched(now_ms()), sweep_buckets(now_ms());
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
	    case route_to_component(Host, set, mod_saslcert_proto:account_event(Kind, JID), {account_event, Key}, self()) of
		ok -> S#state{sending = Key};
		down -> S  % sent again at the next <sessions/> query (kick)
	    end
    end.

%%% the link to the component

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
    case is_component(Comp) andalso other_links(Comp) of
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
    case is_component(Comp) andalso other_links(Comp) of
	[_ | _] -> ok;  % a refused second connection went: the link stays
	_ -> on_link_change(Comp)
    end,
    ok.

is_component(Comp) -> [H || {{H, component}, C} <- ets:tab2list(?LINK), C == Comp] /= [].

%% other_links are the processes of the other connections that serve Comp.
other_links(Comp) ->
    Backend = ejabberd_router:get_backend(),
    case Backend:find_routes(Comp) of
	{ok, Routes} -> [P || #route{pid = P} <- Routes, is_pid(P), P /= self()];
	_ -> []
    end.

on_link_change(Comp) ->
    [begin set(Host, cache_ttl, 0), flush(Host) end || {{Host, component}, C} <- ets:tab2list(?LINK), C == Comp],
    ok.

%%% cache

flush(Host) ->
    forgot(Host),
    ets:match_delete(?CACHE, {{Host, '_'}, '_', '_', '_'}).

forget(Host, Account) ->
    forgot(Host),
    ets:match_delete(?CACHE, {{Host, '_'}, Account, '_', '_'}).

forgot(Host) -> ets:update_counter(?LINK, {Host, forgets}, 1, {{Host, forgets}, 0}).

now_ms() -> erlang:monotonic_time(millisecond).

cached(Host, FP, Account) ->
    case get(Host, cache_ttl) > 0 andalso ets:lookup(?CACHE, {Host, FP}) of
	[{_, Account, Result, Expires}] ->
	    case now_ms() < Expires of
		true -> {ok, Result};
		false -> miss
	    end;
	_ -> miss
    end.

%% remember keeps a positive answer unless something was forgotten since
%% Forgets was read (the answer may predate the change).
remember(Host, FP, Account, #{max_age := Age} = Result, Forgets) ->
    TTL = min(Age, get(Host, cache_ttl)),
    case get(Host, cache) andalso TTL > 0 andalso get(Host, forgets) == Forgets of
	true ->
	    Key = {Host, FP},
	    ets:insert(?CACHE, {Key, Account, Result, now_ms() + TTL * 1000}),
	    case get(Host, forgets) of
		Forgets -> ok;
		_ -> ets:delete(?CACHE, Key)
	    end;
	false -> ok
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
	    case cached(Host, FP, Account) of
		{ok, R} -> grant(State, Account, FP, R);
		miss ->
		    case prefetched(Host, Account, FP, Prefetch) of
			{ok, R} -> grant(State, Account, FP, R);
			timeout -> refuse(State, 'temporary-auth-failure', <<"the certificate service is not available">>);
			ask -> lookup(State, Host, Account, FP, DER)
		    end
	    end;
	_ -> refuse(State, 'not-authorized', <<"the account name is not in its canonical form">>)
    end.

lookup(State, Host, Account, FP, DER) ->
    case lookup_allowed(State, Host) of
	true -> lookup_now(State, Host, Account, FP, DER);
	false ->
	    ?INFO_MSG("saslcert: too many certificate lookups from ~ts; login as ~ts refused",
		      [source_text(State), Account]),
	    refuse(State, 'temporary-auth-failure', <<"Too many certificate logins from your address; try again later">>)
    end.

lookup_now(State, Host, Account, FP, DER) ->
    Forgets = get(Host, forgets),
    Answer = case ask(Host, first_lookup(Host, FP, DER, Account)) of
		 {error, Err} = E ->
		     case get(Host, by_fingerprint) andalso mod_saslcert_proto:decode_lookup_error(Err) of
			 item_not_found -> ask(Host, mod_saslcert_proto:lookup_by_cert(DER, Account));
			 _ -> E
		     end;
		 Other -> Other
	     end,
    case Answer of
	{ok, #xmlel{} = P} ->
	    case mod_saslcert_proto:decode_lookup_result(P) of
		{ok, R} ->
		    remember(Host, FP, Account, R, Forgets),
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

first_lookup(Host, FP, DER, Authzid) ->
    case get(Host, by_fingerprint) of
	true -> mod_saslcert_proto:lookup_by_fingerprint(FP, Authzid);
	_ -> mod_saslcert_proto:lookup_by_cert(DER, Authzid)
    end.

%%% prefetch: the lookup is sent as soon as the client opens its stream
%%% after STARTTLS (the certificate is known then) with a certificate whose
%%% chain the TLS layer verified (chain_verified), without an authzid, so
%%% that its round trip to the component overlaps the client's stream
%%% header, features and <auth/>. Its answer is used at c2s_auth_result only
%%% if it grants the very account ejabberd picked (then a lookup with that
%%% account as authzid would grant it too: the component grants without an
%%% authzid only when the certificate names its owner alone), nothing was
%%% forgotten since it was sent (a <changed/>, <revoked/>, <disabled/> or
%%% <sessions/> in between makes the module ask again, as for the cache)
%%% and it was sent less than `timeout` ago (as the Prosody plugin's). Any
%%% other answer makes the module ask as before; a prefetch with no answer
%%% in time (ejabberd_iq's timeout) refuses with temporary-auth-failure.
%%%
%%% The answer is not sent to the c2s process as a message: ejabberd's c2s
%%% is a p1_server, which moves every message in its mailbox to a queue of
%%% its own before it handles the first, so an answer that arrived together
%%% with <auth/> would sit there, out of reach of a selective receive, until
%%% the login gave up on it. ejabberd_iq's process writes it to the ?PREFETCH
%%% table instead, then wakes the c2s process; c2s_auth_result reads the
%%% table first and only then waits for the wake-up (which, arriving while
%%% it waits, is in the mailbox). A wake-up the login no longer needs is
%%% dropped by c2s_handle_info, which also removes its entry.
%%%
%%% Entries cannot accumulate: each carries the time after which it may be
%%% swept (written + `timeout` + ?PREFETCH_KEEP), and the module process
%%% that owns the tables deletes the entries past that time every ?SWEEP ms
%%% (sweep_prefetched). So an entry whose c2s process ended before it was
%%% written, or after c2s_terminated removed what was there, lives at most
%%% `timeout` + ?PREFETCH_KEEP + ?SWEEP ms (17 s with the defaults). A login
%%% that finds its entry swept asks the component again (never grants on
%%% it): when the wake-up was seen before <auth/> (woken), when the entry is
%%% gone at the wake-up, and when no wake-up came by Sent + `timeout` +
%%% ?PREFETCH_KEEP (ejabberd_iq delivers by Sent + `timeout`: the entry was
%%% written and swept, its wake-up stuck in the p1_server queue).

c2s_stream_started(#{stream_encrypted := true, stream_authenticated := false, lserver := Host, socket := Socket} = State, _Start) ->
    case maps:is_key(saslcert_prefetch, State) orelse get(Host, prefetch) /= true of
	true -> State;
	false ->
	    case xmpp_socket:get_peer_certificate(Socket, der) of
		{ok, DER} ->
		    case chain_verified(Socket) of
			true -> prefetch(State, Host, DER);
			false -> State#{saslcert_prefetch => none}
		    end;
		_ -> State#{saslcert_prefetch => none}
	    end
    end;
c2s_stream_started(State, _Start) ->
    State.

%% chain_verified reports whether the TLS layer verified the client's
%% certificate chain against c2s_cafile: the check xmpp_stream_pkix makes
%% before it lets EXTERNAL succeed (fast_tls's verify result, an OpenSSL
%% X509_V_* code, 0 = verified). A prefetch is sent only then, so that a
%% client with throwaway self-signed (or otherwise unverifiable)
%% certificates costs the component no lookup, as without the prefetch,
%% where the module asks only after ejabberd's EXTERNAL succeeded. A socket
%% that cannot tell (not fast_tls) counts as not verified.
chain_verified(Socket) ->
    try xmpp_socket:get_verify_result(Socket) of
	0 -> true;
	_ -> false
    catch _:_ -> false
    end.

prefetch(State, Host, DER) ->
    FP = mod_saslcert_proto:fingerprint(DER),
    Ref = make_ref(),
    Forgets = get(Host, forgets),
    C2S = self(),
    Keep = get(Host, timeout) + ?PREFETCH_KEEP,
    Deliver = fun(Res) ->
		      case is_process_alive(C2S) of
			  true -> ets:insert(?PREFETCH, {Ref, Res, now_ms() + Keep}), C2S ! {saslcert_prefetch, Ref};
			  false -> ok
		      end
	      end,
    case get(Host, cache_ttl) > 0 andalso ets:member(?CACHE, {Host, FP}) orelse not lookup_allowed(State, Host) of
	true -> State#{saslcert_prefetch => none};  % the cache will most likely answer, or no token left
	false ->
	    case route_to_component(Host, get, first_lookup(Host, FP, DER, <<>>), Deliver, undefined) of
		ok -> State#{saslcert_prefetch => #{ref => Ref, fp => FP, forgets => Forgets, sent => now_ms()}};
		down -> State#{saslcert_prefetch => none}
	    end
    end.

%% c2s_handle_info drops a prefetch wake-up that no login waits for (one
%% that arrives before <auth/> leaves the answer in the table and marks the
%% prefetch woken: the login then does not wait for it).
c2s_handle_info(#{saslcert_prefetch := #{ref := Ref} = P} = State, {saslcert_prefetch, Ref}) ->
    {stop, State#{saslcert_prefetch := P#{woken => true}}};
c2s_handle_info(State, {saslcert_prefetch, Ref}) ->
    ets:delete(?PREFETCH, Ref),
    {stop, State};
c2s_handle_info(State, _Info) ->
    State.

%% prefetched returns {ok, Grant} for a usable prefetch answer granting
%% Account, timeout, or ask.
prefetched(Host, Account, FP, #{ref := Ref, fp := FP, forgets := Forgets, sent := Sent} = P) ->
    Res = case ets:take(?PREFETCH, Ref) of
	      [{_, A, _}] -> A;
	      [] when is_map_key(woken, P) -> swept;
	      [] ->
		  %% ejabberd_iq delivers an answer or timeout by Sent + timeout,
		  %% and its entry stays at least ?PREFETCH_KEEP longer.
		  Wait = max(0, Sent + get(Host, timeout) + ?PREFETCH_KEEP - now_ms()),
		  receive {saslcert_prefetch, Ref} ->
		      case ets:take(?PREFETCH, Ref) of
			  [{_, A, _}] -> A;
			  [] -> swept
		      end
		  after Wait -> swept
		  end
	  end,
    Fresh = now_ms() - Sent < get(Host, timeout),
    case Res =/= swept andalso answer(Host, Res) of
	false -> ask;  % swept before the login read it: too old to use
	timeout -> timeout;
	{ok, #xmlel{} = El} when Fresh ->
	    case {mod_saslcert_proto:decode_lookup_result(El), get(Host, forgets)} of
		{{ok, #{jid := Account} = R}, Forgets} ->
		    remember(Host, FP, Account, R, Forgets),
		    {ok, R};
		_ -> ask
	    end;
	_ -> ask
    end;
prefetched(_Host, _Account, _FP, #{ref := Ref}) ->
    ets:delete(?PREFETCH, Ref),
    ask;
prefetched(_Host, _Account, _FP, _) ->
    ask.

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
    Burst = get(Host, lookup_burst),
    Rate = get(Host, lookup_rate),
    Now = now_ms(),
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

%% sweep_prefetched deletes the prefetch answers whose time is past Now
%% (what no login reads any more; see "Entries cannot accumulate").
sweep_prefetched(Now) ->
    ets:select_delete(?PREFETCH, [{{'_', '_', '$1'}, [{'<', '$1', Now}], [true]}]).

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

%%% sessions

c2s_session_opened(#{saslcert := #{method := certificate, fp := FP} = A, jid := JID} = State) ->
    Host = JID#jid.lserver,
    State1 = case maps:get(resource, A, undefined) of
		 undefined -> State;
		 R when R == JID#jid.resource -> State;
		 R -> rebind(State, R)
	     end,
    Full = jid:encode(maps:get(jid, State1)),
    ets:insert(?SESSIONS, {self(), Host, Full, FP}),
    notice(Host, bound, Full, FP),
    State1;
c2s_session_opened(State) ->
    State.

%% rebind moves the session just opened to the resource the certificate
%% forces (the bind result then names it).
rebind(#{sid := SID, user := U, server := S, resource := Old} = State, R) ->
    ejabberd_sm:close_session(SID, U, S, Old),
    ejabberd_c2s:open_session(State#{resource => R, sid => ejabberd_sm:make_sid()}).

c2s_terminated(State, _Reason) ->
    case maps:get(saslcert_prefetch, State, none) of
	#{ref := Ref} -> ets:delete(?PREFETCH, Ref);
	_ -> ok
    end,
    case ets:lookup(?SESSIONS, self()) of
	[{_, Host, Full, FP}] ->
	    ets:delete(?SESSIONS, self()),
	    notice(Host, closed, Full, FP);
	[] -> ok
    end,
    State.

%% notice queues a session notice; the module's process sends the queue as
%% one message (no answer) notice_delay ms after the first notice in it, or
%% at once when it holds ?NOTICE_BATCH_MAX (as the Prosody plugin does: a
%% login costs no extra message of its own). The notices of one session
%% come from its c2s process, so they stay in order.
notice(Host, Event, Full, FP) ->
    gen_server:cast(gen_mod:get_module_proc(Host, ?MODULE), {notice, {Event, Full, FP}}).

%% send_notices sends the queued notices in order. With no route to the
%% component they are dropped: its <sessions/> query on connect repairs
%% the list.
send_notices(#state{notices = []} = S) -> cancel_notice_timer(S);
send_notices(#state{host = Host, notices = Ns} = S) ->
    Comp = component(Host),
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

%% close_sessions ends the sessions of Host that match Pred(FullJID, FP)
%% with <reset/> and Text, and returns how many.
close_sessions(Host, Pred, Text) ->
    Pids = [Pid || {Pid, H, Full, FP} <- ets:tab2list(?SESSIONS), H == Host, Pred(Full, FP)],
    [ejabberd_c2s:send(Pid, xmpp:serr_reset(Text, <<"en">>)) || Pid <- Pids],
    length(Pids).

bare(Full) -> hd(binary:split(Full, <<"/">>)).

%%% requests from the component

decode_iq_subel(El) -> El.

process_iq(#iq{from = From, to = To, sub_els = [#xmlel{} = El]} = IQ) ->
    Host = To#jid.lserver,
    case jid:tolower(From) == {<<>>, component(Host), <<>>} of
	true -> handle(Host, IQ, El);
	false -> xmpp:make_error(IQ, xmpp:err_forbidden(<<"only the saslcert component may send this">>, <<"en">>))
    end;
process_iq(IQ) ->
    xmpp:make_error(IQ, xmpp:err_bad_request()).

handle(Host, #iq{type = get} = IQ, #xmlel{name = <<"sessions">>} = El) ->
    case mod_saslcert_proto:decode_sessions_query(El) of
	{ok, #{fingerprint_lookup := ByFP, cache_ttl := TTL}} ->
	    flush(Host),
	    set(Host, by_fingerprint, ByFP),
	    set(Host, cache_ttl, TTL),
	    flush(Host),
	    gen_server:cast(gen_mod:get_module_proc(Host, ?MODULE), kick),
	    Sessions = [{Full, FP} || {_, H, Full, FP} <- ets:tab2list(?SESSIONS), H == Host],
	    xmpp:make_iq_result(IQ, mod_saslcert_proto:sessions_result(Sessions));
	{error, _} -> xmpp:make_error(IQ, xmpp:err_bad_request())
    end;
handle(Host, #iq{type = set} = IQ, #xmlel{name = <<"changed">>} = El) ->
    case mod_saslcert_proto:decode_notice(changed, El) of
	{ok, #{jid := Account}} ->
	    forget(Host, Account),
	    %% The sessions bound so far reach the component before this
	    %% answer, which tells it that they bound before the change
	    %% (component/boundorder.go): the sessions of a certificate being
	    %% disabled stay. The module's process routes the batch to the
	    %% component's connection before the call returns; this answer is
	    %% routed to it after.
	    flush_notices(Host),
	    xmpp:make_iq_result(IQ);
	_ -> xmpp:make_error(IQ, xmpp:err_bad_request())
    end;
handle(Host, #iq{type = set} = IQ, #xmlel{name = <<"revoked">>} = El) ->
    case mod_saslcert_proto:decode_notice(revoked, El) of
	{ok, #{jid := Account, fingerprint := FP}} ->
	    forget(Host, Account),
	    N = close_sessions(Host, fun(Full, F) -> F == FP andalso bare(Full) == Account end,
			       <<"This client certificate has been revoked.">>),
	    xmpp:make_iq_result(IQ, mod_saslcert_proto:revoked_result(N));
	_ -> xmpp:make_error(IQ, xmpp:err_bad_request())
    end;
handle(Host, #iq{type = set} = IQ, #xmlel{name = <<"disabled">>} = El) ->
    case mod_saslcert_proto:decode_notice(disabled, El) of
	{ok, #{jid := Full, fingerprint := FP}} ->
	    forget(Host, bare(Full)),
	    N = close_sessions(Host, fun(F, P) -> P == FP andalso F == Full end,
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

%%% client requests: auth stamps and XEP-0257 forwarding

user_send_packet({#iq{type = T, sub_els = Els} = IQ, #{jid := JID} = State}) when T == get; T == set ->
    Host = JID#jid.lserver,
    Comp = component(Host),
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
    mod_saslcert_proto:stamp(get(Host, secret), jid:encode(JID), ID,
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
    case route_to_component(Host, set, Wrapper, Reply, undefined) of
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
    case answer(Host, Res) of
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
