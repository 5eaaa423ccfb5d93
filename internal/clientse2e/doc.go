// Package clientse2e drives real, unmodified XMPP clients against a real
// Prosody with saslcert (internal/stacktest): today the terminal client
// poezio, run headless in tmux and read from its screen. Its tests skip when
// the client or tmux is missing, unless SASLCERT_REQUIRE_POEZIO=1 (make
// test sets it; scripts/deps.sh installs both).
//
// poezio refuses to run as root: when the tests run as root, the client,
// its tmux server and every file it reads run and belong to the user
// nobody, in a temporary directory of their own.
package clientse2e
