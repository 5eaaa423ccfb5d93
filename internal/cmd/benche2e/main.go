// Command benche2e is `make bench-e2e`: saslcert and its peer, side by side,
// through real Prosody servers on 127.0.0.1.
//
// It starts throwaway Prosody instances with the same listeners and TLS
// settings (network_settings.nagle = false, client certificates requested,
// one ECDSA P-256 server key), the global part of whose configuration and
// whose server certificate come from internal/prosodyconf, as the tests'
// Prosody's do:
//
//   - peer: Debian's prosody-modules mod_client_certs (in-process Lua,
//     per-user flat files), made loadable by the two one-line fixes of
//     PEER.md applied to a temporary copy;
//   - ours: mod_saslcert (which forwards XEP-0257 requests itself), configured with what
//     `saslcert prosody config` prints, and `saslcert serve` (SQLite) as a
//     separate process;
//   - ours-1M: the same with -fill filler certificates added to the store
//     before the component starts;
//   - peer-fill (with -peer-fill N): the peer with N filler accounts, each
//     with one certificate in its flat files.
//
// Every instance gets the same -users accounts, each with one ECDSA P-256
// certificate uploaded through that server's own XEP-0257 path (an <append/>
// after a SASL PLAIN login). One lean Go client (raw TCP + STARTTLS + SASL +
// bind, no XMPP library) then runs the phases round by round, each phase
// on every instance in turn (A B A B ...), so that drift on a busy machine
// hits all of them alike:
//
//   - login: SASL EXTERNAL logins one after another, timed from connect to
//     resource bound; the connection is then closed;
//   - items, items x16: XEP-0257 <items/> requests, sequential and with
//     -window outstanding, spread over 16 sessions of accounts with one
//     certificate;
//   - append, append x16: XEP-0257 <append/> of new certificates, spread
//     over fresh accounts so no account gets more than -per-account (the
//     peer rewrites an account's whole file on every append; ours has a
//     per-account limit).
//
// Server CPU is read from /proc (schedstat of every thread) for Prosody and
// the component before and after each phase. The table ends with
//
//	RATIO login=<ours/peer> items=<ours/peer> append=<ours/peer> login_1m_vs_1k=<ours at 1M / ours at 1k>
//
// where login compares logins/s, items and append the lower of the
// sequential and windowed IQ/s ratios, and login_1m_vs_1k the login rates of
// ours-1M and ours. Every process it starts is stopped at the end, on error
// and on SIGINT/SIGTERM; the temporary directory is removed unless -keep.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/saslcert/saslcert/internal/prosodyconf"
)

type config struct {
	saslcert, prosody, peerModule, pluginDir string

	users, fill, peerFill              int
	rounds, logins, iqs, window        int
	perAccount, itemSessions, uploader int
	warmup                             int

	prosodyLog string
	cacheTTL   string // saslcert serve --plugin-cache-ttl; "" keeps its default
	postgres   string // -postgres: the ours-pg instance's store URL ("": none)
	profileDir string
	workParent string
	keep       bool
	timeout    time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == componentChildArg {
		componentChild(os.Args[2:])
		return
	}
	var cfg config
	flag.StringVar(&cfg.saslcert, "saslcert", "", "the built saslcert binary (go build ./cmd/saslcert); required")
	flag.StringVar(&cfg.prosody, "prosody", "/usr/bin/prosody", "the prosody binary")
	flag.StringVar(&cfg.peerModule, "peer-module", prosodyconf.PeerModule, "Debian's mod_client_certs.lua (copied and patched in the temp dir)")
	flag.StringVar(&cfg.pluginDir, "plugin-dir", "plugins/prosody", "directory holding the plugin (mod_saslcert.lua and its saslcert_*.lib.lua parts)")
	flag.IntVar(&cfg.users, "users", 1000, "accounts with one certificate each, on every instance (the 1k store)")
	flag.IntVar(&cfg.fill, "fill", 1_000_000, "filler certificates in the ours-1M store (0: no ours-1M instance)")
	flag.IntVar(&cfg.peerFill, "peer-fill", 0, "filler accounts with one certificate each for a peer-fill instance (0: none)")
	flag.StringVar(&cfg.postgres, "postgres", "", "also run an ours-pg instance (login phase) whose component stores in this empty PostgreSQL database (postgres://..., no password in it: PGPASSWORD or PGPASSFILE apply), for the RATIO login_pg_vs_sqlite")
	flag.IntVar(&cfg.rounds, "rounds", 6, "rounds; each runs every phase on every instance in turn")
	flag.IntVar(&cfg.logins, "logins", 150, "logins per instance per round")
	flag.IntVar(&cfg.iqs, "iqs", 200, "IQs per instance per round in each IQ phase")
	flag.IntVar(&cfg.window, "window", 16, "outstanding IQs in the windowed phases")
	flag.IntVar(&cfg.perAccount, "per-account", 8, "appends per fresh account (ours allows 10 active certificates by default)")
	flag.IntVar(&cfg.itemSessions, "item-sessions", 16, "sessions the items requests are spread over")
	flag.IntVar(&cfg.uploader, "upload-workers", 4, "parallel sessions uploading the accounts' certificates during setup")
	flag.IntVar(&cfg.warmup, "warmup", 30, "untimed logins and IQs per instance before the first round")
	flag.StringVar(&cfg.cacheTTL, "plugin-cache-ttl", "", "passed to saslcert serve --plugin-cache-ttl (e.g. 0 to measure without the plugin's caches; default: serve's default)")
	flag.StringVar(&cfg.prosodyLog, "prosody-log", "info", "Prosody log level for all instances (info is Debian's default)")
	flag.StringVar(&cfg.workParent, "workdir", "", "parent of the temporary directory (default: $TMPDIR)")
	flag.StringVar(&cfg.profileDir, "profile", "", "write CPU profiles here: pprof of each component (run as a child of this program) and a Lua sampling profile of each Prosody, per phase; slows the run")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (configs, logs, databases)")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "give up after this long")
	flag.Parse()
	if cfg.postgres != "" && cfg.profileDir != "" {
		fmt.Fprintln(os.Stderr, "benche2e: -postgres and -profile cannot be combined (the profiled component opens SQLite)")
		os.Exit(2)
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintf(os.Stderr, "benche2e: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	err := run(ctx, cfg)
	stopAll()
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		fmt.Fprintf(os.Stderr, "benche2e: interrupted; every server it started is stopped (%v)\n", err)
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benche2e: FAILED: %v\n", err)
		os.Exit(1)
	}
}

func (c *config) check() error {
	switch {
	case c.saslcert == "":
		return errors.New("-saslcert is required (go build -o bin/saslcert ./cmd/saslcert)")
	case c.users < 1 || c.rounds < 1 || c.logins < 1 || c.iqs < 1 || c.window < 1:
		return errors.New("-users, -rounds, -logins, -iqs and -window must be positive")
	case c.perAccount < 1 || c.perAccount > 9:
		return errors.New("-per-account must be 1..9 (ours allows 10 active certificates per account)")
	case c.itemSessions < 1 || c.itemSessions > c.users:
		return errors.New("-item-sessions must be 1..-users")
	case c.uploader < 1:
		return errors.New("-upload-workers must be positive")
	case c.fill < 0 || c.peerFill < 0 || c.warmup < 0:
		return errors.New("-fill, -peer-fill and -warmup must not be negative")
	}
	switch c.prosodyLog {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("-prosody-log %q: want debug, info, warn or error", c.prosodyLog)
	}
	for _, f := range []*string{&c.saslcert, &c.pluginDir, &c.peerModule} {
		abs, err := filepath.Abs(*f)
		if err != nil {
			return err
		}
		*f = abs
	}
	if _, err := os.Stat(filepath.Join(c.pluginDir, "mod_saslcert.lua")); err != nil {
		return fmt.Errorf("-plugin-dir: %w", err)
	}
	for _, f := range []string{c.saslcert, c.prosody, c.peerModule} {
		if _, err := os.Stat(f); err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, cfg config) error {
	work, err := os.MkdirTemp(cfg.workParent, "saslcert-bench-e2e.")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, work: work, domain: "example.org", component: "certs.example.org", started: time.Now()}
	defer func() {
		b.closeSessions()
		stopAll()
		if cfg.keep {
			fmt.Printf("kept %s\n", work)
			return
		}
		if cfg.peerFill > 0 {
			say("removing %s (%d filler files of the peer take minutes)", work, 2*cfg.peerFill)
		}
		os.RemoveAll(work)
	}()
	if err := b.setup(ctx); err != nil {
		return err
	}
	if err := b.measure(ctx); err != nil {
		return err
	}
	b.report(os.Stdout)
	if b.prof != nil {
		return b.prof.summary(os.Stdout, b)
	}
	return nil
}
