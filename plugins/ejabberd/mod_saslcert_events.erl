%%% mod_saslcert_events: the account events queue of mod_saslcert, in
%%% Mnesia (docs/PLUGIN-PROTOCOL.md, "account deleted" and "account
%%% created").
%%%
%%% An account event is written to the node's disc before the hook that
%%% produced it returns (so before ejabberd acknowledges the registration
%%% or the removal), and deleted only when the component has answered it.
%%% Events survive ejabberd restarts and the component being away: a
%%% deletion that was lost would leave the previous owner's certificates
%%% active, and when the name is registered again the reconciliation cannot
%%% see that it changed hands (the account exists).
%%%
%%% Events are kept per host in the order they were queued: the key is
%%% {Host, Seq}, Seq from a counter per host in a second table, raised in
%%% the same transaction (so the order survives restarts), in an ordered_set. Both tables are disc_copies on
%%% this node.
-module(mod_saslcert_events).

-export([init/0, push/3, first/1, delete/1]).

-record(mod_saslcert_event, {key :: {binary(), pos_integer()}, event :: {created | deleted, binary()}}).
-record(mod_saslcert_event_seq, {host :: binary(), seq :: non_neg_integer()}).

%% init creates the tables if they do not exist (ejabberd_mnesia: idempotent,
%% also on the other nodes of a cluster that run the module).
init() ->
    ejabberd_mnesia:create(?MODULE, mod_saslcert_event,
			   [{disc_copies, [node()]}, {type, ordered_set},
			    {attributes, record_info(fields, mod_saslcert_event)}]),
    ejabberd_mnesia:create(?MODULE, mod_saslcert_event_seq,
			   [{disc_copies, [node()]},
			    {attributes, record_info(fields, mod_saslcert_event_seq)}]),
    ok.

%% push queues the event {Kind, JID} for Host and returns ok once Mnesia has
%% it, or {error, Why}.
push(Host, Kind, JID) when Kind == created; Kind == deleted ->
    F = fun() ->
		Seq = case mnesia:read(mod_saslcert_event_seq, Host, write) of
			  [#mod_saslcert_event_seq{seq = N}] -> N + 1;
			  [] -> 1
		      end,
		mnesia:write(#mod_saslcert_event_seq{host = Host, seq = Seq}),
		mnesia:write(#mod_saslcert_event{key = {Host, Seq}, event = {Kind, JID}})
	end,
    case mnesia:sync_transaction(F) of
	{atomic, ok} -> ok;
	{aborted, Why} -> {error, Why}
    end.

%% first is the oldest queued event of Host, {Key, {Kind, JID}}, or empty.
first(Host) ->
    case mnesia:dirty_next(mod_saslcert_event, {Host, 0}) of
	{Host, _} = Key ->
	    case mnesia:dirty_read(mod_saslcert_event, Key) of
		[#mod_saslcert_event{event = Ev}] -> {Key, Ev};
		[] -> empty  % deleted meanwhile (there is one sender per host)
	    end;
	_ -> empty
    end.

%% delete removes the event under Key (answered by the component).
delete(Key) ->
    mnesia:dirty_delete(mod_saslcert_event, Key).
