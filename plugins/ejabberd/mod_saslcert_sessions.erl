%%% mod_saslcert_sessions: certificate sessions: the resource a full-JID
%%% certificate forces, the session table the <sessions/> query is answered
%%% from, bound and closed notices, closing sessions on <revoked/> and
%%% <disabled/>.
-module(mod_saslcert_sessions).

-export([c2s_session_opened/1, c2s_terminated/2, notice/4, close_sessions/3, bare/1]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("mod_saslcert.hrl").

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
    gen_server:cast(gen_mod:get_module_proc(Host, mod_saslcert), {notice, {Event, Full, FP}}).

%% close_sessions ends the sessions of Host that match Pred(FullJID, FP)
%% with <reset/> and Text, and returns how many.
close_sessions(Host, Pred, Text) ->
    Pids = [Pid || {Pid, H, Full, FP} <- ets:tab2list(?SESSIONS), H == Host, Pred(Full, FP)],
    [ejabberd_c2s:send(Pid, xmpp:serr_reset(Text, <<"en">>)) || Pid <- Pids],
    length(Pids).

bare(Full) -> hd(binary:split(Full, <<"/">>)).
