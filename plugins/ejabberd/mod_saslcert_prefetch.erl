%%% mod_saslcert_prefetch: the lookup sent before <auth/>.
-module(mod_saslcert_prefetch).

-export([c2s_stream_started/2, c2s_handle_info/2, prefetched/4, sweep_prefetched/1]).

-include("xmpp.hrl").
-include("logger.hrl").
-include("mod_saslcert.hrl").

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
    case maps:is_key(saslcert_prefetch, State) orelse mod_saslcert_link:get(Host, prefetch) /= true of
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
    Forgets = mod_saslcert_link:get(Host, forgets),
    C2S = self(),
    Keep = mod_saslcert_link:get(Host, timeout) + ?PREFETCH_KEEP,
    Deliver = fun(Res) ->
		      case is_process_alive(C2S) of
			  true -> ets:insert(?PREFETCH, {Ref, Res, mod_saslcert_link:now_ms() + Keep}), C2S ! {saslcert_prefetch, Ref};
			  false -> ok
		      end
	      end,
    case mod_saslcert_link:get(Host, cache_ttl) > 0 andalso ets:member(?CACHE, {Host, FP}) orelse not mod_saslcert_limit:lookup_allowed(State, Host) of
	true -> State#{saslcert_prefetch => none};  % the cache will most likely answer, or no token left
	false ->
	    case mod_saslcert_link:route_to_component(Host, get, mod_saslcert_link:first_lookup(Host, FP, DER, <<>>), Deliver, undefined) of
		ok -> State#{saslcert_prefetch => #{ref => Ref, fp => FP, forgets => Forgets, sent => mod_saslcert_link:now_ms()}};
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
		  Wait = max(0, Sent + mod_saslcert_link:get(Host, timeout) + ?PREFETCH_KEEP - mod_saslcert_link:now_ms()),
		  receive {saslcert_prefetch, Ref} ->
		      case ets:take(?PREFETCH, Ref) of
			  [{_, A, _}] -> A;
			  [] -> swept
		      end
		  after Wait -> swept
		  end
	  end,
    Fresh = mod_saslcert_link:now_ms() - Sent < mod_saslcert_link:get(Host, timeout),
    case Res =/= swept andalso mod_saslcert_link:answer(Host, Res) of
	false -> ask;  % swept before the login read it: too old to use
	timeout -> timeout;
	{ok, #xmlel{} = El} when Fresh ->
	    case {mod_saslcert_proto:decode_lookup_result(El), mod_saslcert_link:get(Host, forgets)} of
		{{ok, #{jid := Account} = R}, Forgets} ->
		    mod_saslcert_cache:remember(Host, FP, Account, R, Forgets),
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

%% sweep_prefetched deletes the prefetch answers whose time is past Now
%% (what no login reads any more; see "Entries cannot accumulate").
sweep_prefetched(Now) ->
    ets:select_delete(?PREFETCH, [{{'_', '_', '$1'}, [{'<', '$1', Now}], [true]}]).
