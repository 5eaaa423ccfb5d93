package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/progress"
	"github.com/saslcert/saslcert/internal/prosodyconf"
)

type bench struct {
	cfg               config
	work              string
	domain, component string
	started           time.Time
	load0             string // load average when the run started

	serverCertFile, serverKeyFile string
	serverDER                     []byte
	peerPluginDir, profPluginDir  string
	prof                          *profiler // with -profile
	password, accountRecord       string

	users       []*account    // login accounts, one certificate each
	appendUsers []*appendUser // fresh accounts for the append phases
	instances   []*instance

	iqSeq atomic.Int64
}

type appendUser struct {
	*account
	certs [][]byte // what the append phases upload, in order
}

type instance struct {
	name      string
	peer      bool
	fill      int    // filler certificates (ours-1M) or accounts (peer-fill)
	loginOnly bool   // takes part in the login phase only
	store     string // the component's --store ("": SQLite in its data directory)

	dir                        string
	c2sPort, compPort, c2s     string
	secretFile                 string
	prosody, comp              *proc
	items                      []*session
	control                    *session   // with -profile: labels the phases
	appends                    []*session // by index in bench.appendUsers
	nextLogin, nextAppendUser  int
	res                        map[string]*result
	rssProsody, rssComp        int64
	setupUpload, setupSessions time.Duration
}

// result accumulates one phase of one instance over all rounds.
type result struct {
	n        int
	wall     time.Duration
	lat      []time.Duration
	cpuSrv   time.Duration // Prosody
	cpuComp  time.Duration // component
	cpuSelf  time.Duration // this client
	perRound []float64     // ops/s of each round
}

func (r *result) rate() float64 {
	if r == nil || r.wall <= 0 {
		return 0
	}
	return float64(r.n) / r.wall.Seconds()
}

// phase is one kind of measurement.
type phase struct {
	key, title string
	window     int
	kind       string // "login", "items", "append"
}

func (b *bench) phases() []phase {
	w := fmt.Sprintf("x%d", b.cfg.window)
	return []phase{
		{"login", "login (EXTERNAL, connect to bound)", 1, "login"},
		{"items", "items, sequential", 1, "items"},
		{"items-w", "items, " + w + " outstanding", b.cfg.window, "items"},
		{"append", "append, sequential", 1, "append"},
		{"append-w", "append, " + w + " outstanding", b.cfg.window, "append"},
	}
}

func say(format string, a ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// setup makes keys and certificates, starts every instance and uploads the
// accounts' certificates through each server's own XEP-0257 path.
func (b *bench) setup(ctx context.Context) error {
	b.load0 = loadAvg()
	say("work dir %s; load average %s", b.work, b.load0)
	if err := b.makeServerCert(); err != nil {
		return err
	}
	if b.cfg.profileDir != "" {
		dir, err := filepath.Abs(b.cfg.profileDir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		b.prof = &profiler{dir: dir}
		b.profPluginDir = filepath.Join(b.work, "profile-plugins")
		if err := writeLuaProfiler(b.profPluginDir); err != nil {
			return err
		}
		say("profiling into %s (a profiled run is slower; its rates are not the benchmark's)", dir)
	}
	b.peerPluginDir = filepath.Join(b.work, "peer-plugins")
	if err := prosodyconf.PatchPeerModule(b.cfg.peerModule, b.peerPluginDir); err != nil {
		return err
	}
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	b.password = hex.EncodeToString(pw)
	var err error
	if b.accountRecord, err = scramAccount(b.password); err != nil {
		return err
	}
	if err := b.makeAccounts(); err != nil {
		return err
	}

	b.instances = []*instance{{name: "peer", peer: true}, {name: "ours"}}
	if b.cfg.fill > 0 {
		b.instances = append(b.instances, &instance{name: "ours-" + count(b.cfg.fill), fill: b.cfg.fill, loginOnly: true})
	}
	if b.cfg.peerFill > 0 {
		b.instances = append(b.instances, &instance{name: "peer-" + count(b.cfg.peerFill), peer: true, fill: b.cfg.peerFill, loginOnly: true})
	}
	if b.cfg.postgres != "" {
		b.instances = append(b.instances, &instance{name: "ours-pg", loginOnly: true, store: b.cfg.postgres})
	}
	for _, in := range b.instances {
		in.dir = filepath.Join(b.work, in.name)
		in.res = map[string]*result{}
		if err := os.MkdirAll(filepath.Join(in.dir, "data"), 0o700); err != nil {
			return err
		}
		if err := b.prepare(ctx, in); err != nil {
			return err
		}
	}
	for _, in := range b.instances {
		if err := b.start(ctx, in); err != nil {
			return err
		}
	}
	for _, in := range b.instances {
		if err := b.upload(ctx, in); err != nil {
			return err
		}
	}
	for _, in := range b.instances {
		if err := b.openSessions(ctx, in); err != nil {
			return err
		}
	}
	return nil
}

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// makeServerCert writes the one server certificate all instances use:
// ECDSA P-256, self-signed for the domain and the component, valid for a
// week (prosodyconf.WriteServerCert, as the tests' Prosody gets).
func (b *bench) makeServerCert() error {
	sc, err := prosodyconf.WriteServerCert(b.work, 7*24*time.Hour, b.domain, b.component)
	if err != nil {
		return err
	}
	b.serverDER = sc.Cert.Raw
	b.serverCertFile, b.serverKeyFile = sc.CertFile, sc.KeyFile
	return nil
}

// clientTLS is a client TLS config that pins the server certificate (a
// byte comparison instead of chain verification keeps the client cheap)
// and always presents cert, if any: Go would otherwise withhold a
// certificate whose issuer is not among the CAs the server names.
func (b *bench) clientTLS(cert *tls.Certificate) *tls.Config {
	server := b.serverDER
	cfg := &tls.Config{
		ServerName:         b.domain,
		MinVersion:         tls.VersionTLS12,
		CurvePreferences:   []tls.CurveID{tls.X25519}, // no post-quantum key share the server would ignore
		InsecureSkipVerify: true,                      // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || string(raw[0]) != string(server) {
				return errors.New("not the benchmark's server certificate")
			}
			return nil
		},
	}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// makeAccounts makes the login accounts (a key and a self-signed
// certificate with an xmppAddr each) and the append accounts with the
// certificates they will upload.
func (b *bench) makeAccounts() error {
	now := time.Now()
	nb, na := now.Add(-time.Hour), now.Add(365*24*time.Hour)
	mk := func(user string, key *ecdsa.PrivateKey) ([]byte, error) {
		return enroll.SelfSigned(key, jid.MustParse(user+"@"+b.domain), nb, na)
	}
	b.users = make([]*account, b.cfg.users)
	for i := range b.users {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		user := fmt.Sprintf("u%05d", i)
		der, err := mk(user, key)
		if err != nil {
			return err
		}
		cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
		b.users[i] = &account{user: user, der: der, cert: cert, tls: b.clientTLS(cert)}
	}
	perBatch := (b.cfg.iqs + b.cfg.perAccount - 1) / b.cfg.perAccount
	n := perBatch * 2 * (b.cfg.rounds + 1) // +1: the warm-up
	b.appendUsers = make([]*appendUser, n)
	plain := b.clientTLS(nil)
	for i := range b.appendUsers {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		user := fmt.Sprintf("a%05d", i)
		au := &appendUser{account: &account{user: user, password: b.password, tls: plain}}
		for range b.cfg.perAccount {
			der, err := mk(user, key)
			if err != nil {
				return err
			}
			au.certs = append(au.certs, der)
		}
		b.appendUsers[i] = au
	}
	say("made %d login accounts and %d append accounts (%d certificates to append)", len(b.users), n, n*b.cfg.perAccount)
	return nil
}

// prepare writes an instance's accounts and filler before it starts.
func (b *bench) prepare(_ context.Context, in *instance) error {
	data := filepath.Join(in.dir, "data")
	users := make([]string, 0, len(b.users)+len(b.appendUsers))
	for _, u := range b.users {
		users = append(users, u.user)
	}
	if !in.loginOnly {
		for _, u := range b.appendUsers {
			users = append(users, u.user)
		}
	}
	if err := writeAccounts(data, b.domain, b.accountRecord, users); err != nil {
		return err
	}
	if !in.peer {
		in.secretFile = filepath.Join(in.dir, "component.secret")
		s := make([]byte, 24)
		if _, err := rand.Read(s); err != nil {
			return err
		}
		if err := os.WriteFile(in.secretFile, []byte(hex.EncodeToString(s)+"\n"), 0o600); err != nil {
			return err
		}
	}
	if in.fill == 0 {
		return nil
	}
	t0 := time.Now()
	if in.peer {
		say("%s: writing %d filler accounts with one certificate each (flat files)", in.name, in.fill)
		meter := progress.New(os.Stderr, in.name+": filler accounts", int64(in.fill))
		err := writePeerFiller(data, b.domain, b.accountRecord, in.fill, func(done int) {
			meter.Clear()
			say("%s: %d filler accounts written", in.name, done)
			meter.Set(int64(done))
		})
		meter.Done()
		if err != nil {
			return err
		}
	} else {
		say("%s: adding %d filler certificates to the SQLite store (ImportCerts)", in.name, in.fill)
		meter := progress.New(os.Stderr, in.name+": filler certificates", int64(in.fill))
		err := fillStore(filepath.Join(in.dir, "component"), b.domain, in.fill, func(done int, el time.Duration) {
			if done%250000 == 0 || done == in.fill {
				meter.Clear()
				say("%s: %d filler certificates stored (%.0f/s)", in.name, done, float64(done)/el.Seconds())
			}
			meter.Set(int64(done))
		})
		meter.Done()
		if err != nil {
			return err
		}
	}
	say("%s: filler done in %v", in.name, time.Since(t0).Round(time.Millisecond))
	return nil
}

// start runs an instance's Prosody (and component).
func (b *bench) start(ctx context.Context, in *instance) error {
	extra := func() (string, error) { return b.peerExtra(), nil }
	if !in.peer {
		extra = func() (string, error) { return b.oursExtra(in) }
	}
	if err := b.startProsody(ctx, in, extra); err != nil {
		return err
	}
	what := "Prosody + patched mod_client_certs"
	if !in.peer {
		if err := b.startComponent(ctx, in); err != nil {
			return err
		}
		what = "Prosody + mod_saslcert, saslcert serve pid " + fmt.Sprint(in.comp.pid())
	}
	say("%s: %s on %s (prosody pid %d)", in.name, what, in.c2s, in.prosody.pid())
	return nil
}

// upload gives every login account its certificate through the server's
// XEP-0257 path: a PLAIN login and an <append/> without 'to'. Then one
// EXTERNAL login and one <items/> check that both work.
func (b *bench) upload(ctx context.Context, in *instance) error {
	t0 := time.Now()
	// The first append may wait for the component's post-connect queries.
	if err := b.uploadOne(ctx, in, b.users[0], 10*time.Second); err != nil {
		return err
	}
	var (
		next     atomic.Int64
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	next.Store(1)
	for range b.cfg.uploader {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(b.users) || ctx.Err() != nil {
					return
				}
				if err := b.uploadOne(ctx, in, b.users[i], 0); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(int64(len(b.users)))
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%s: upload: %w", in.name, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	in.setupUpload = time.Since(t0)
	// Check: EXTERNAL works and items lists exactly the uploaded certificate.
	c, bound, err := login(ctx, in.c2s, b.domain, b.users[0])
	if err != nil {
		return fmt.Errorf("%s: the EXTERNAL check: %w", in.name, err)
	}
	s := newSession(c, bound)
	defer s.closeSession()
	e, err := s.call(ctx, "check", itemsIQ("check"))
	if err != nil {
		return fmt.Errorf("%s: the items check: %w", in.name, err)
	}
	var n int
	if items := e.child(nsCerts, "items"); items != nil {
		for _, it := range items.Children {
			if it.XMLName.Local == "item" {
				n++
			}
		}
	}
	if n != 1 {
		return fmt.Errorf("%s: items for %s lists %d certificates, want 1", in.name, b.users[0].user, n)
	}
	say("%s: %d certificates uploaded in %v; EXTERNAL login and items checked", in.name, len(b.users), in.setupUpload.Round(time.Millisecond))
	return nil
}

func (b *bench) uploadOne(ctx context.Context, in *instance, u *account, retryFor time.Duration) error {
	pa := &account{user: u.user, password: b.password, tls: u.tls}
	deadline := time.Now().Add(retryFor)
	for {
		c, bound, err := login(ctx, in.c2s, b.domain, pa)
		if err != nil {
			return err
		}
		s := newSession(c, bound)
		ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err = s.call(ictx, "up", appendIQ("up", "login", u.der))
		cancel()
		s.closeSession()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("append for %s: %w", u.user, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// openSessions logs in the sessions the IQ phases use: the first
// -item-sessions login accounts (EXTERNAL) and every append account
// (PLAIN).
func (b *bench) openSessions(ctx context.Context, in *instance) error {
	if b.prof != nil {
		c, bound, err := login(ctx, in.c2s, b.domain, b.users[0])
		if err != nil {
			return fmt.Errorf("%s: the profile control session: %w", in.name, err)
		}
		in.control = newSession(c, bound)
	}
	if in.loginOnly {
		return nil
	}
	t0 := time.Now()
	for _, u := range b.users[:b.cfg.itemSessions] {
		c, bound, err := login(ctx, in.c2s, b.domain, u)
		if err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		in.items = append(in.items, newSession(c, bound))
	}
	in.appends = make([]*session, len(b.appendUsers))
	var (
		next     atomic.Int64
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	for range b.cfg.uploader {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(b.appendUsers) || ctx.Err() != nil {
					return
				}
				c, bound, err := login(ctx, in.c2s, b.domain, b.appendUsers[i].account)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					next.Store(int64(len(b.appendUsers)))
					return
				}
				in.appends[i] = newSession(c, bound)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%s: %w", in.name, firstErr)
	}
	in.setupSessions = time.Since(t0)
	say("%s: %d item sessions and %d append sessions open (%v)", in.name, len(in.items), len(in.appends), in.setupSessions.Round(time.Millisecond))
	return ctx.Err()
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func (b *bench) closeSessions() {
	var wg sync.WaitGroup
	for _, in := range b.instances {
		for _, s := range append(append([]*session{in.control}, in.items...), in.appends...) {
			if s != nil {
				wg.Go(s.closeSession)
			}
		}
		in.items, in.appends, in.control = nil, nil, nil
	}
	wg.Wait()
}

// loginBatch runs n EXTERNAL logins one after another, cycling through the
// login accounts, and returns their latencies.
func (b *bench) loginBatch(ctx context.Context, in *instance, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		u := b.users[in.nextLogin%len(b.users)]
		in.nextLogin++
		t0 := time.Now()
		c, _, err := login(ctx, in.c2s, b.domain, u)
		d := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.name, err)
		}
		c.close()
		lat = append(lat, d)
	}
	return lat, nil
}

// iqBatch sends n IQs with at most window outstanding; next(i) says on which
// session and what. Any error reply fails the batch.
func (b *bench) iqBatch(ctx context.Context, n, window int, next func(i int, id string) (*session, string)) ([]time.Duration, error) {
	type res struct {
		d   time.Duration
		err error
	}
	sem := make(chan struct{}, window)
	out := make(chan res, n)
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, errors.New("IQ batch: no reply for 2 minutes")
		}
		id := fmt.Sprintf("q%d", b.iqSeq.Add(1))
		s, stanza := next(i, id)
		t0 := time.Now()
		s.request(id, stanza, func(e *elem, err error) {
			d := time.Since(t0)
			if err == nil && e.attr("type") != "result" {
				err = fmt.Errorf("%s: %s", s.jid, e.describe())
			}
			out <- res{d, err}
			<-sem
		})
	}
	lat := make([]time.Duration, 0, n)
	var first error
	for range n {
		select {
		case r := <-out:
			first = cmpErr(first, r.err)
			lat = append(lat, r.d)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, errors.New("IQ batch: no reply for 2 minutes")
		}
	}
	return lat, first
}

// runPhase runs n operations of phase p on in (untimed if res is nil).
func (b *bench) runPhase(ctx context.Context, in *instance, p phase, n int) ([]time.Duration, error) {
	switch p.kind {
	case "login":
		return b.loginBatch(ctx, in, n)
	case "items":
		return b.iqBatch(ctx, n, p.window, func(i int, id string) (*session, string) {
			return in.items[i%len(in.items)], itemsIQ(id)
		})
	case "append":
		// Fresh accounts for this batch, each getting at most perAccount
		// certificates, round robin.
		m := (n + b.cfg.perAccount - 1) / b.cfg.perAccount
		base := in.nextAppendUser
		if base+m > len(b.appendUsers) {
			return nil, errors.New("out of append accounts")
		}
		in.nextAppendUser += m
		return b.iqBatch(ctx, n, p.window, func(i int, id string) (*session, string) {
			u := base + i%m
			k := i / m
			return in.appends[u], appendIQ(id, fmt.Sprintf("b%d", k), b.appendUsers[u].certs[k])
		})
	}
	return nil, fmt.Errorf("unknown phase %q", p.kind)
}

// measure runs the warm-up and the rounds.
func (b *bench) measure(ctx context.Context) error {
	phases := b.phases()
	if b.cfg.warmup > 0 {
		for _, in := range b.instances {
			for _, p := range phases {
				if in.loginOnly && p.kind != "login" {
					continue
				}
				n := b.cfg.warmup
				if p.kind == "append" {
					n = min(n, b.cfg.iqs)
				}
				if _, err := b.runPhase(ctx, in, p, n); err != nil {
					return fmt.Errorf("warm-up %s on %s: %w", p.key, in.name, err)
				}
			}
		}
		say("warm-up done")
	}
	for r := range b.cfg.rounds {
		t0 := time.Now()
		for _, p := range phases {
			for _, in := range b.instances {
				if in.loginOnly && p.kind != "login" {
					continue
				}
				n := b.cfg.iqs
				if p.kind == "login" {
					n = b.cfg.logins
				}
				if err := b.profileStart(ctx, in, p.key, r+1); err != nil {
					return fmt.Errorf("profile %s: %w", in.name, err)
				}
				s0, c0, self0 := b.cpu(in)
				w0 := time.Now()
				lat, err := b.runPhase(ctx, in, p, n)
				wall := time.Since(w0)
				s1, c1, self1 := b.cpu(in)
				if perr := b.profileStop(ctx, in, false); perr != nil && err == nil {
					err = fmt.Errorf("profile: %w", perr)
				}
				if err != nil {
					return fmt.Errorf("round %d, %s on %s: %w", r+1, p.key, in.name, err)
				}
				res := in.res[p.key]
				if res == nil {
					res = &result{}
					in.res[p.key] = res
				}
				res.n += n
				res.wall += wall
				res.lat = append(res.lat, lat...)
				res.cpuSrv += s1 - s0
				res.cpuComp += c1 - c0
				res.cpuSelf += self1 - self0
				res.perRound = append(res.perRound, float64(n)/wall.Seconds())
			}
		}
		var parts []string
		for _, in := range b.instances {
			parts = append(parts, fmt.Sprintf("%s %.0f/s", in.name, in.res["login"].perRound[r]))
		}
		say("round %d/%d done in %v: logins %s", r+1, b.cfg.rounds, time.Since(t0).Round(time.Millisecond), strings.Join(parts, ", "))
	}
	for _, in := range b.instances {
		if err := b.profileStop(ctx, in, true); err != nil {
			return fmt.Errorf("profile dump %s: %w", in.name, err)
		}
		in.rssProsody = rssKiB(in.prosody.pid())
		if in.comp != nil {
			in.rssComp = rssKiB(in.comp.pid())
		}
	}
	return nil
}

// cpu reads the CPU time of the instance's Prosody, its component and this
// process.
func (b *bench) cpu(in *instance) (srv, comp, self time.Duration) {
	srv = cpuTime(in.prosody.pid())
	if in.comp != nil {
		comp = cpuTime(in.comp.pid())
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return srv, comp, self
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
