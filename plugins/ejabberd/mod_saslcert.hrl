%%% Shared by the parts of mod_saslcert: the names of its ETS tables (the
%%% gen_server in mod_saslcert creates them, one set for all hosts) and its
%%% constants.

-define(NS_CERTS, <<"urn:xmpp:saslcert:1">>).
-define(NS_DELEG, <<"urn:xmpp:delegation:1">>).
-define(SESSIONS, mod_saslcert_sessions).   % Pid -> {Host, FullJID, FP}
-define(CACHE, mod_saslcert_cache).         % {Host, FP} -> {Account, Result, Expires}
-define(LINK, mod_saslcert_link).           % {Host, What} -> Value
-define(PREFETCH, mod_saslcert_prefetch).   % Ref -> {Ref, prefetch answer (or timeout), SweepAfter}
-define(BUCKETS, mod_saslcert_buckets).     % {Host, Source} -> {Key, Tokens, AtMs, FullAtMs}
-define(PREFETCH_KEEP, 2000).  % ms an answer is kept beyond `timeout` after it was written
-define(SWEEP, 10000).         % ms between sweeps of ?PREFETCH and ?BUCKETS
