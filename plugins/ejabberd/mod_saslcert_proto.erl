%%% mod_saslcert_proto: the wire format of the saslcert plugin protocol
%%% (urn:x-saslcert:plugin:0, docs/PLUGIN-PROTOCOL.md) for mod_saslcert.
%%%
%%% Pure functions over fxml elements: no process, no ejabberd state, so that
%%% the same fixtures the Go package pluginproto and the Prosody plugin read
%%% (testdata/pluginproto/) test it outside ejabberd
%%% (plugins/ejabberd/fixtures_test.go runs fixtures.escript).
%%%
%%% Decoders are strict: they return {ok, Value} or {error, Reason} with a
%%% short binary Reason, and never crash on input from the network.
-module(mod_saslcert_proto).

-export([ns/0, fingerprint/1, is_fingerprint/1,
	 lookup_by_cert/2, lookup_by_fingerprint/2,
	 decode_lookup_result/1, decode_lookup_error/1,
	 decode_sessions_query/1, sessions_result/1,
	 decode_notice/2, revoked_result/1, disabled_result/1,
	 decode_accounts_query/1, accounts_result/1,
	 account_event/2, notices/1, stamp/6, stamp_mac/6]).

-include_lib("p1_xml/include/fxml.hrl").

-define(NS, <<"urn:x-saslcert:plugin:0">>).
-define(NS_STANZAS, <<"urn:ietf:params:xml:ns:xmpp-stanzas">>).
-define(NS_SASL, <<"urn:ietf:params:xml:ns:xmpp-sasl">>).
%% The most accounts one <accounts/> query may name (as the Prosody plugin).
-define(MAX_ACCOUNTS, 1000).

ns() -> ?NS.

%% fingerprint(DER) is "sha256:" and 64 lowercase hex digits.
-spec fingerprint(binary()) -> binary().
fingerprint(DER) ->
    <<"sha256:", (hex(crypto:hash(sha256, DER)))/binary>>.

-spec is_fingerprint(binary()) -> boolean().
is_fingerprint(<<"sha256:", H/binary>>) when byte_size(H) == 64 ->
    lists:all(fun(C) -> (C >= $0 andalso C =< $9) orelse (C >= $a andalso C =< $f) end,
	      binary_to_list(H));
is_fingerprint(_) -> false.

%% lookup_by_cert(DER, Authzid): the lookup naming the certificate whole;
%% Authzid <<>> leaves the attribute out.
lookup_by_cert(DER, Authzid) ->
    el(<<"lookup">>, authzid(Authzid),
       [#xmlel{name = <<"x509cert">>, attrs = [], children = [{xmlcdata, base64:encode(DER)}]}]).

%% lookup_by_fingerprint(FP, Authzid): the lookup naming it by fingerprint.
lookup_by_fingerprint(FP, Authzid) ->
    el(<<"lookup">>, [{<<"fingerprint">>, FP} | authzid(Authzid)], []).

authzid(<<>>) -> [];
authzid(A) -> [{<<"authzid">>, A}].

%% decode_lookup_result(El): the payload of a lookup's IQ result, as a map
%% #{jid, resource (undefined if none), fingerprint, no_cert_management,
%% max_age (seconds, 0 if absent)}.
decode_lookup_result(#xmlel{name = <<"lookup">>} = El) ->
    case {attr(El, <<"xmlns">>), attr(El, <<"jid">>), attr(El, <<"fingerprint">>),
	  attr(El, <<"no-cert-management">>), attr(El, <<"max-age">>)} of
	{?NS, JID, FP, NCM, MaxAge} when is_binary(JID), JID /= <<>> ->
	    case {bool(NCM, false), non_neg(MaxAge, 0), FP == <<>> orelse is_fingerprint(FP)} of
		{{ok, B}, {ok, Age}, true} ->
		    Res = case attr(El, <<"resource">>) of
			      <<>> -> undefined;
			      R -> R
			  end,
		    {ok, #{jid => JID, resource => Res, fingerprint => FP,
			   no_cert_management => B, max_age => Age}};
		_ -> {error, <<"bad attribute in the lookup result">>}
	    end;
	_ -> {error, <<"the lookup result has no jid">>}
    end;
decode_lookup_result(_) -> {error, <<"not a lookup result">>}.

%% decode_lookup_error(ErrorEl): the <error/> of a lookup's IQ error as the
%% SASL failure to send: {refused, Condition} for type auth (Condition an
%% atom of #sasl_failure{}; not-authorized if the SASL child is missing or
%% unknown), {item_not_found} for modify/item-not-found (ask again with the
%% certificate), temporary for everything else.
decode_lookup_error(#xmlel{name = <<"error">>} = El) ->
    case attr(El, <<"type">>) of
	<<"auth">> ->
	    {refused, sasl_condition(El)};
	<<"modify">> ->
	    case has_child(El, <<"item-not-found">>, ?NS_STANZAS) of
		true -> item_not_found;
		false -> temporary
	    end;
	_ -> temporary
    end;
decode_lookup_error(_) -> temporary.

sasl_condition(#xmlel{children = Cs}) ->
    Known = [<<"not-authorized">>, <<"invalid-authzid">>, <<"credentials-expired">>,
	     <<"account-disabled">>, <<"malformed-request">>, <<"temporary-auth-failure">>],
    Found = [N || #xmlel{name = N} = C <- Cs, attr(C, <<"xmlns">>) == ?NS_SASL, lists:member(N, Known)],
    case Found of
	[N | _] -> binary_to_atom(N, utf8);
	[] -> 'not-authorized'
    end.

%% decode_sessions_query(El): the component's <sessions/> query:
%% #{fingerprint_lookup => boolean(), cache_ttl => seconds}.
decode_sessions_query(#xmlel{name = <<"sessions">>} = El) ->
    case non_neg(attr(El, <<"cache-ttl">>), 0) of
	{ok, TTL} ->
	    {ok, #{fingerprint_lookup => attr(El, <<"lookup">>) == <<"fingerprint">>, cache_ttl => TTL}};
	error -> {error, <<"bad cache-ttl">>}
    end;
decode_sessions_query(_) -> {error, <<"not a sessions query">>}.

%% sessions_result([{FullJID, FP}]): the answer to it.
sessions_result(Sessions) ->
    el(<<"sessions">>, [], [#xmlel{name = <<"session">>, attrs = [{<<"jid">>, J}, {<<"fingerprint">>, F}], children = []}
			    || {J, F} <- Sessions]).

%% decode_notice(Name, El) for Name revoked | disabled | changed: the
%% component's notice as #{jid, fingerprint (undefined for changed)}.
decode_notice(Name, #xmlel{} = El) ->
    N = atom_to_binary(Name, utf8),
    case {El#xmlel.name, attr(El, <<"jid">>), attr(El, <<"fingerprint">>)} of
	{N, JID, _} when JID == <<>> -> {error, <<"no jid">>};
	{<<"changed">>, JID, _} -> {ok, #{jid => JID, fingerprint => undefined}};
	{N, JID, FP} ->
	    case is_fingerprint(FP) of
		true -> {ok, #{jid => JID, fingerprint => FP}};
		false -> {error, <<"bad fingerprint">>}
	    end;
	_ -> {error, <<"unexpected element">>}
    end.

revoked_result(Closed) -> el(<<"revoked">>, [{<<"closed">>, integer_to_binary(Closed)}], []).
disabled_result(Closed) -> el(<<"disabled">>, [{<<"closed">>, integer_to_binary(Closed)}], []).

%% decode_accounts_query(El): the bare JIDs the component asks about.
decode_accounts_query(#xmlel{name = <<"accounts">>, children = Cs}) ->
    JIDs = [attr(C, <<"jid">>) || #xmlel{name = <<"account">>} = C <- Cs],
    if length(JIDs) > ?MAX_ACCOUNTS -> {error, too_many};
       true -> {ok, JIDs}
    end;
decode_accounts_query(_) -> {error, <<"not an accounts query">>}.

%% accounts_result([{JID, true | false | unknown}]).
accounts_result(Answers) ->
    el(<<"accounts">>, [], [#xmlel{name = <<"account">>,
				   attrs = [{<<"jid">>, J}, {<<"exists">>, atom_to_binary(E, utf8)}],
				   children = []} || {J, E} <- Answers]).

%% account_event(deleted | created, BareJID): the account notice.
account_event(deleted, JID) -> el(<<"account-deleted">>, [{<<"jid">>, JID}], []);
account_event(created, JID) -> el(<<"account-created">>, [{<<"jid">>, JID}], []).

%% notices([{bound | closed, FullJID, FP}]): session notices for one message.
notices(Notices) ->
    el(<<"notices">>, [], [#xmlel{name = <<"session">>,
				  attrs = [{<<"event">>, atom_to_binary(E, utf8)}, {<<"jid">>, J}, {<<"fingerprint">>, F}],
				  children = []} || {E, J, F} <- Notices]).

%% stamp(Secret, JID, ID, Method, FP, Manage): the auth stamp element;
%% Method certificate | other, FP <<>> for other, Manage boolean().
stamp(Secret, JID, ID, Method, FP, Manage) ->
    M = atom_to_binary(Method, utf8),
    B = atom_to_binary(Manage, utf8),
    FPAttr = case FP of <<>> -> []; _ -> [{<<"fingerprint">>, FP}] end,
    el(<<"auth">>, [{<<"jid">>, JID}, {<<"id">>, ID}, {<<"method">>, M}] ++ FPAttr ++
	   [{<<"manage">>, B}, {<<"mac">>, stamp_mac(Secret, JID, ID, M, FP, B)}], []).

%% stamp_mac: hex HMAC-SHA256 over the protocol's length-prefixed fields.
stamp_mac(Secret, JID, ID, Method, FP, Manage) ->
    Fields = [JID, ID, Method, FP, Manage],
    Msg = [<<"urn:x-saslcert:plugin:0 auth\n">> |
	   [[integer_to_binary(byte_size(F)), $:, F, $,] || F <- Fields]],
    hex(crypto:mac(hmac, sha256, Secret, Msg)).

%%% helpers

el(Name, Attrs, Children) ->
    #xmlel{name = Name, attrs = [{<<"xmlns">>, ?NS} | Attrs], children = Children}.

attr(#xmlel{attrs = Attrs}, Name) ->
    case lists:keyfind(Name, 1, Attrs) of
	{_, V} -> V;
	false -> <<>>
    end.

has_child(#xmlel{children = Cs}, Name, NS) ->
    lists:any(fun(#xmlel{name = N} = C) -> N == Name andalso attr(C, <<"xmlns">>) == NS;
		 (_) -> false
	      end, Cs).

bool(<<>>, Default) -> {ok, Default};
bool(<<"true">>, _) -> {ok, true};
bool(<<"false">>, _) -> {ok, false};
bool(_, _) -> error.

non_neg(<<>>, Default) -> {ok, Default};
non_neg(B, _) when byte_size(B) =< 9 ->
    try binary_to_integer(B) of
	N when N >= 0 -> {ok, N};
	_ -> error
    catch _:_ -> error
    end;
non_neg(_, _) -> error.

hex(Bin) -> << <<(hexdigit(N))>> || <<N:4>> <= Bin >>.
hexdigit(N) when N < 10 -> $0 + N;
hexdigit(N) -> $a + N - 10.
