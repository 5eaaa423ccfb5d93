#!/usr/bin/env escript
%%! -noshell
%%% fixtures.escript EBIN FIXTURES_DIR: runs mod_saslcert_proto (compiled in
%%% EBIN) over the plugin protocol's fixtures (testdata/pluginproto/) and
%%% prints one line per file, tab-separated:
%%%   ENC  file  xml     what the module sends, encoded from the documented value
%%%   DEC  file  ok|FAIL: why   what the module reads, decoded and compared
%%%   SKIP file  why     a message the module never sends nor reads a field of
%%% plugins/ejabberd/fixtures_test.go compares the ENC lines with the files.
-include_lib("p1_xml/include/fxml.hrl").

-define(FP, <<"sha256:89eee6b6c7541508d753a43e2aaf9267e81f1c8e4302146769742c93d293077c">>).
-define(DER, <<"not a real certificate">>).
-define(ALICE, <<"alice@example.org">>).

main([Ebin, Dir]) ->
    true = code:add_patha(Ebin),
    {ok, _} = application:ensure_all_started(fast_xml),
    {ok, Files} = file:list_dir(Dir),
    [run(F, read(filename:join(Dir, F))) || F <- lists:sort(Files), filename:extension(F) == ".xml"],
    ok.

read(Path) ->
    {ok, B} = file:read_file(Path),
    NoComment = re:replace(B, "<!--.*?-->", "", [dotall, global, {return, binary}]),
    fxml_stream:parse_element(string:trim(NoComment)).

run(F, El) ->
    Line = try case_of(F, El)
	   catch C:R:St -> {dec, io_lib:format("FAIL: ~p:~p ~p", [C, R, St])}
	   end,
    case Line of
	{enc, X} -> io:format("ENC\t~s\t~s~n", [F, fxml:element_to_binary(X)]);
	{dec, true} -> io:format("DEC\t~s\tok~n", [F]);
	{dec, false} -> io:format("DEC\t~s\tFAIL: decoded to another value~n", [F]);
	{dec, Why} -> io:format("DEC\t~s\t~s~n", [F, Why]);
	{skip, Why} -> io:format("SKIP\t~s\t~s~n", [F, Why])
    end.

-define(P, mod_saslcert_proto).
case_of("account-created.xml", _) -> {enc, ?P:account_event(created, ?ALICE)};
case_of("account-deleted.xml", _) -> {enc, ?P:account_event(deleted, ?ALICE)};
case_of("account-created-result.xml", _) -> {skip, "only the result type is read"};
case_of("account-deleted-result.xml", _) -> {skip, "only the result type is read"};
case_of("accounts-query.xml", El) -> {dec, ?P:decode_accounts_query(El) == {ok, [?ALICE, <<"bob@example.org">>]}};
case_of("accounts-result.xml", _) -> {enc, ?P:accounts_result([{?ALICE, true}, {<<"bob@example.org">>, false}])};
case_of("changed.xml", El) -> {dec, ?P:decode_notice(changed, El) == {ok, #{jid => ?ALICE, fingerprint => undefined}}};
case_of("disabled.xml", El) ->
    {dec, ?P:decode_notice(disabled, El) == {ok, #{jid => <<"alice@example.org/phone">>, fingerprint => ?FP}}};
case_of("disabled-result.xml", _) -> {enc, ?P:disabled_result(0)};
case_of("lookup-by-cert.xml", _) -> {enc, ?P:lookup_by_cert(?DER, ?ALICE)};
case_of("lookup-by-fingerprint.xml", _) -> {enc, ?P:lookup_by_fingerprint(?P:fingerprint(?DER), <<>>)};
case_of("lookup-refused.xml", El) -> {dec, ?P:decode_lookup_error(El) == {refused, 'invalid-authzid'}};
case_of("lookup-undecided.xml", El) -> {dec, ?P:decode_lookup_error(El) == temporary};
case_of("lookup-result.xml", El) ->
    {dec, ?P:decode_lookup_result(El) == {ok, #{jid => ?ALICE, resource => <<"tablet">>, fingerprint => ?FP,
						no_cert_management => false, max_age => 60}}};
case_of("notices.xml", _) ->
    {enc, ?P:notices([{bound, <<"alice@example.org/tablet">>, ?FP}, {closed, <<"alice@example.org/phone">>, ?FP}])};
case_of("revoked.xml", El) -> {dec, ?P:decode_notice(revoked, El) == {ok, #{jid => ?ALICE, fingerprint => ?FP}}};
case_of("revoked-result.xml", _) -> {enc, ?P:revoked_result(0)};
case_of("session-notice.xml", _) -> {skip, "the module sends notices in <notices/> only"};
case_of("sessions-query.xml", El) -> {dec, ?P:decode_sessions_query(El) == {ok, #{fingerprint_lookup => true, cache_ttl => 60}}};
case_of("sessions-result.xml", _) -> {enc, ?P:sessions_result([{<<"alice@example.org/tablet">>, ?FP}])};
case_of("stamp.xml", _) ->
    {enc, ?P:stamp(<<"fixture-secret">>, <<"alice@example.org/kiosk">>, <<"req-1">>, certificate, ?FP, false)};
case_of(F, _) -> {dec, "FAIL: no case for " ++ F}.
