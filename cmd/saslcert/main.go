// Command saslcert is the saslcert command line: it inspects and manages the
// client certificates that XMPP users log in with (XEP-0257 + SASL EXTERNAL).
//
// Exit status: 0 success, 1 the command ran and the answer is no (for
// example a certificate is not usable), 2 wrong usage or unreadable input.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, newApp(os.Stdout, os.Stderr, time.Now), os.Args)
	stop()
	os.Exit(code)
}
