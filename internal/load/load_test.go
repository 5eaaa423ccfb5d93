package load

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

var (
	clientsFlag  = flag.Int("load.clients", 200, "concurrent clients (one account each)")
	durationFlag = flag.Duration("load.duration", 10*time.Second, "how long the clients run")
	reportFlag   = flag.String("load.report", "", "also write the report (Markdown) to this file")
)

func TestMain(m *testing.M) { stacktest.Main(m) }

const (
	domain       = "example.org"
	opTimeout    = 30 * time.Second
	maxActive    = 10 // the component's default per-account limit
	sampleWrongs = 20
)

// Operation names, in report order.
const (
	opLogin        = "login (EXTERNAL, active cert)"
	opLoginRefused = "login (EXTERNAL, refused cert)"
	opItems        = "items"
	opAppend       = "append"
	opRevoke       = "revoke"
	opDisable      = "disable"
)

var opOrder = []string{opLogin, opLoginRefused, opItems, opAppend, opRevoke, opDisable}

// stats collects latencies, errors and wrong answers from all clients.
type stats struct {
	mu     sync.Mutex
	lat    map[string][]time.Duration
	errs   map[string]int // answers that are not wrong but not served either (busy, timeout, ...)
	wrong  []string
	nWrong int
}

func (s *stats) ok(op string, d time.Duration) {
	s.mu.Lock()
	s.lat[op] = append(s.lat[op], d)
	s.mu.Unlock()
}

func (s *stats) fail(op, what string) {
	s.mu.Lock()
	s.errs[op+": "+what]++
	s.mu.Unlock()
}

func (s *stats) bad(format string, a ...any) {
	s.mu.Lock()
	s.nWrong++
	if len(s.wrong) < sampleWrongs {
		s.wrong = append(s.wrong, fmt.Sprintf(format, a...))
	}
	s.mu.Unlock()
}

// client is one simulated user and its model of its account.
type client struct {
	st     *stacktest.Stack
	s      *stats
	user   string
	acct   string
	sess   *xmppclient.Client
	rng    *rand.Rand
	active map[string]*certtest.Cert // what the account must list, by name
	dead   []*certtest.Cert          // revoked or disabled: must not log in
	seq    int
}

// TestIntegrationLoad runs -load.clients clients for -load.duration through
// Prosody against a saslcert serve child process and fails on any wrong
// answer, any crash or reconnect, or a store that does not match the
// clients' models at the end.
func TestIntegrationLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test (-short)")
	}
	n, dur := *clientsFlag, *durationFlag
	st := stacktest.Start(t, stacktest.Options{Domain: domain, Process: true})
	comp := st.Comp()

	setup := time.Now()
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("load%03d", i)
	}
	st.RegisterMany(t, users, 8)
	s := &stats{lat: map[string][]time.Duration{}, errs: map[string]int{}}
	clients := make([]*client, n)
	seeds := make([]stacktest.Seed, n)
	for i, u := range users {
		c := &client{st: st, s: s, user: u, acct: u + "@" + domain, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
			active: map[string]*certtest.Cert{}}
		base := c.newCert(t)
		c.active["base"] = base
		seeds[i] = stacktest.Seed{Account: u, Name: "base", DER: base.DER}
		clients[i] = c
	}
	if _, err := st.TryAddCerts(seeds); err != nil {
		t.Fatal(err)
	}
	// Every client's own session: logged in with its base certificate.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var loginErr error
	var mu sync.Mutex
	for _, c := range clients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sess, err := st.LoginCert(ctx, c.user, c.active["base"], "")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				loginErr = errors.Join(loginErr, fmt.Errorf("%s: %w", c.user, err))
				return
			}
			c.sess = sess
		})
	}
	wg.Wait()
	if loginErr != nil {
		t.Fatalf("session logins: %v", loginErr)
	}
	defer func() {
		for _, c := range clients {
			c.sess.Close()
		}
	}()
	t.Logf("set-up: %d accounts registered, certificates stored, sessions open in %v", n, time.Since(setup).Round(time.Millisecond))

	start := time.Now()
	end := start.Add(dur)
	for _, c := range clients {
		wg.Go(func() { c.run(t, end) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	// Nothing crashed or reconnected.
	rss := vmHWM(comp.Pid())
	if comp.Exited() {
		t.Errorf("the component exited during the run")
	}
	if got := comp.Connects(); got != 1 {
		t.Errorf("the component connected %d times; want 1 (no reconnects)", got)
	}
	if !st.S.Running() {
		t.Errorf("Prosody is not running any more")
	}
	// The store matches every model.
	byAcct := map[string][]*storage.Cert{}
	for _, rec := range st.Certs(t) {
		byAcct[rec.Account] = append(byAcct[rec.Account], rec)
	}
	for _, c := range clients {
		c.checkStore(byAcct[c.acct])
	}

	rep := report(s, n, elapsed, rss)
	t.Log("\n" + rep)
	if *reportFlag != "" {
		if err := os.WriteFile(*reportFlag, []byte(rep), 0o644); err != nil {
			t.Error(err)
		}
	}
	if s.nWrong > 0 {
		t.Errorf("%d wrong answers; first ones:\n%s", s.nWrong, strings.Join(s.wrong, "\n"))
	}
	var nerr int
	for _, v := range s.errs {
		nerr += v
	}
	// Not being served (temporary-auth-failure, a wait error, a timeout) is
	// not a wrong answer, but more than 5% means the stack is broken.
	if total := totalOps(s); nerr*20 > total {
		t.Errorf("%d of %d operations were not served (more than 5%%): %v", nerr, total, s.errs)
	}
}

func (c *client) newCert(t testing.TB) *certtest.Cert {
	return stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{c.acct}})
}

// run loops over the operation mix until end.
func (c *client) run(t testing.TB, end time.Time) {
	for time.Now().Before(end) {
		p := c.rng.IntN(100)
		switch {
		case p < 30:
			c.login()
		case p < 40:
			c.loginRefused(t)
		case p < 70:
			c.items()
		case p < 85:
			if len(c.active) < maxActive {
				c.append(t)
			} else {
				c.retire(opRevoke)
			}
		case p < 95:
			c.retire(opRevoke)
		default:
			c.retire(opDisable)
		}
	}
}

func (c *client) pickActive() (string, *certtest.Cert) {
	names := make([]string, 0, len(c.active))
	for name := range c.active {
		names = append(names, name)
	}
	slices.Sort(names)
	name := names[c.rng.IntN(len(names))]
	return name, c.active[name]
}

func loginWith(st *stacktest.Stack, user string, cert *certtest.Cert) (bound string, cond string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s, err := st.LoginCert(ctx, user, cert, "")
	if err == nil {
		bound = s.LocalAddr().Bare().String()
		s.Close()
		return bound, "", nil
	}
	var ae *xmppclient.AuthError
	if errors.As(err, &ae) {
		return "", ae.Condition, nil
	}
	return "", "", err
}

func (c *client) login() {
	name, cert := c.pickActive()
	t0 := time.Now()
	bound, cond, err := loginWith(c.st, c.user, cert)
	d := time.Since(t0)
	switch {
	case err != nil:
		c.s.fail(opLogin, "no answer: "+shortErr(err))
	case cond == "temporary-auth-failure":
		c.s.fail(opLogin, "temporary-auth-failure")
	case cond != "":
		c.s.bad("%s: active certificate %q refused: %s", c.user, name, cond)
	case bound != c.acct:
		c.s.bad("%s: certificate %q logged in as %s", c.user, name, bound)
	default:
		c.s.ok(opLogin, d)
	}
}

// loginRefused presents a revoked or disabled certificate, or one never
// uploaded: it must get not-authorized.
func (c *client) loginRefused(t testing.TB) {
	var cert *certtest.Cert
	what := "never uploaded"
	if len(c.dead) > 0 && c.rng.IntN(4) != 0 {
		cert, what = c.dead[c.rng.IntN(len(c.dead))], "revoked or disabled"
	} else {
		cert = c.newCert(t)
	}
	t0 := time.Now()
	bound, cond, err := loginWith(c.st, c.user, cert)
	d := time.Since(t0)
	switch {
	case err != nil:
		c.s.fail(opLoginRefused, "no answer: "+shortErr(err))
	case bound != "":
		c.s.bad("%s: a %s certificate LOGGED IN as %s", c.user, what, bound)
	case cond == "temporary-auth-failure":
		c.s.fail(opLoginRefused, "temporary-auth-failure")
	case cond != "not-authorized":
		c.s.bad("%s: a %s certificate got %s, want not-authorized", c.user, what, cond)
	default:
		c.s.ok(opLoginRefused, d)
	}
}

func (c *client) items() {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	t0 := time.Now()
	items, err := xep0257.Fetch(ctx, c.sess.Session, jid.JID{})
	d := time.Since(t0)
	if !c.served(opItems, err) {
		return
	}
	got := map[string][]byte{}
	for _, it := range items {
		got[it.Name] = it.Cert
	}
	if len(got) != len(c.active) || len(items) != len(c.active) {
		c.s.bad("%s: items lists %d certificates, want %d", c.user, len(items), len(c.active))
		c.resync()
		return
	}
	for name, cert := range c.active {
		if !bytes.Equal(got[name], cert.DER) {
			c.s.bad("%s: items: %q missing or with another certificate", c.user, name)
			c.resync()
			return
		}
	}
	c.s.ok(opItems, d)
}

func (c *client) append(t testing.TB) {
	c.seq++
	name := fmt.Sprintf("c%d", c.seq)
	cert := c.newCert(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	t0 := time.Now()
	err := xep0257.AppendCert(ctx, c.sess.Session, jid.JID{}, name, cert.DER, false)
	d := time.Since(t0)
	if !c.served(opAppend, err) {
		return
	}
	c.active[name] = cert
	c.s.ok(opAppend, d)
}

// retire revokes or disables one certificate other than the session's own.
func (c *client) retire(op string) {
	var names []string
	for name := range c.active {
		if name != "base" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	name := names[c.rng.IntN(len(names))]
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	t0 := time.Now()
	var err error
	if op == opRevoke {
		err = xep0257.RevokeCert(ctx, c.sess.Session, jid.JID{}, name)
	} else {
		err = xep0257.DisableCert(ctx, c.sess.Session, jid.JID{}, name)
	}
	d := time.Since(t0)
	if !c.served(op, err) {
		return
	}
	c.dead = append(c.dead, c.active[name])
	delete(c.active, name)
	c.s.ok(op, d)
}

// served classifies a request's error: nil is served; a wait-type stanza
// error or no answer is counted as not served (and the model resynced
// after a write whose fate is unknown); any other stanza error is a wrong
// answer.
func (c *client) served(op string, err error) bool {
	if err == nil {
		return true
	}
	var se stanza.Error
	switch {
	case errors.As(err, &se) && se.Type == stanza.Wait:
		c.s.fail(op, fmt.Sprintf("%s/%s", se.Type, se.Condition))
	case errors.As(err, &se):
		c.s.bad("%s: %s: %s/%s %q", c.user, op, se.Type, se.Condition, se.Text[""])
	default:
		c.s.fail(op, "no answer: "+shortErr(err))
		if op != opItems {
			c.resync()
		}
	}
	return false
}

// resync replaces the model of active certificates by what the server
// lists (after a write whose outcome is unknown).
func (c *client) resync() {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	items, err := xep0257.Fetch(ctx, c.sess.Session, jid.JID{})
	if err != nil {
		return
	}
	known := map[string]*certtest.Cert{}
	for name, cert := range c.active {
		known[name] = cert
	}
	c.active = map[string]*certtest.Cert{}
	for _, it := range items {
		if cert, ok := known[it.Name]; ok && bytes.Equal(cert.DER, it.Cert) {
			c.active[it.Name] = cert
		}
	}
	c.s.fail("resync", "model replaced by the server's list")
}

// checkStore compares the account's records with the model.
func (c *client) checkStore(recs []*storage.Cert) {
	active := map[string]storage.Fingerprint{}
	state := map[storage.Fingerprint]storage.State{}
	for _, r := range recs {
		if r.State == storage.StateActive {
			active[r.Name] = r.Fingerprint
		}
		state[r.Fingerprint] = r.State
	}
	if len(active) != len(c.active) {
		c.s.bad("%s: the store has %d active certificates, the model %d", c.user, len(active), len(c.active))
	}
	for name, cert := range c.active {
		if active[name] != storage.FingerprintOf(cert.DER) {
			c.s.bad("%s: %q is not active in the store", c.user, name)
		}
	}
	for _, cert := range c.dead {
		if s := state[storage.FingerprintOf(cert.DER)]; s == storage.StateActive || s == "" {
			c.s.bad("%s: a revoked or disabled certificate is %q in the store", c.user, s)
		}
	}
}

func shortErr(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "deadline exceeded"), strings.Contains(s, "i/o timeout"):
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	case strings.Contains(s, "connection reset"), strings.Contains(s, "EOF"), strings.Contains(s, "broken pipe"):
		return "connection closed"
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func totalOps(s *stats) int {
	n := 0
	for _, l := range s.lat {
		n += len(l)
	}
	return n
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(float64(len(l))*p+0.999999) - 1
	return l[min(max(i, 0), len(l)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// vmHWM is the peak resident set size of pid, from /proc.
func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s %s/%s; Prosody, the saslcert child process and the load generator share them",
		runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func report(s *stats, n int, elapsed time.Duration, rss string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	total := 0
	for _, l := range s.lat {
		total += len(l)
	}
	nerr := 0
	for _, v := range s.errs {
		nerr += v
	}
	fmt.Fprintf(&b, "Load run: %d clients for %v (%s)\n\n", n, elapsed.Round(time.Millisecond), machine())
	fmt.Fprintf(&b, "| operation | served | per second | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, op := range opOrder {
		l := s.lat[op]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		var mx time.Duration
		if len(l) > 0 {
			mx = l[len(l)-1]
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s |\n", op, len(l), float64(len(l))/elapsed.Seconds(),
			ms(pct(l, .50)), ms(pct(l, .95)), ms(pct(l, .99)), ms(mx))
	}
	var all []time.Duration
	for _, l := range s.lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	fmt.Fprintf(&b, "| **all** | %d | %.0f | %s | %s | %s | %s |\n\n", total, float64(total)/elapsed.Seconds(),
		ms(pct(all, .50)), ms(pct(all, .95)), ms(pct(all, .99)), ms(pct(all, 1)))
	fmt.Fprintf(&b, "Wrong answers: %d. Not served: %d", s.nWrong, nerr)
	if nerr > 0 {
		keys := make([]string, 0, len(s.errs))
		for k := range s.errs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %d", k, s.errs[k]))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, "; "))
	}
	fmt.Fprintf(&b, ". Component peak RSS (VmHWM): %s.\n", rss)
	return b.String()
}
