package hostile

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// Flags for longer runs (defaults are what make test runs).
var (
	killAppends  = flag.Int("hostile.kill-appends", 1000, "concurrent appends in TestIntegrationKill9DuringAppends")
	killAfter    = flag.Int("hostile.kill-after", 300, "results to wait for before the kill -9")
	restartFor   = flag.Duration("hostile.restart-load", 3*time.Second, "load before and after the Prosody restart")
	diskFullMode = flag.String("hostile.diskfull", "auto", "how TestIntegrationDiskFull fills the disk: tmpfs, rlimit or auto (tmpfs if mount works)")
)

// outcome classifies the answer to a request.
type outcome int

const (
	okResult outcome = iota // a result
	gotError                // a stanza error
	noAnswer                // timeout, cancellation or a broken stream
)

// classify maps an XEP-0257 helper's error.
func classify(err error) (outcome, stanza.Error) {
	var se stanza.Error
	switch {
	case err == nil:
		return okResult, se
	case errors.As(err, &se) && se.Condition == stanza.RemoteServerTimeout:
		// The plugin gave up waiting for the component (saslcert_timeout):
		// the request may or may not have been carried out.
		return noAnswer, se
	case errors.As(err, &se):
		return gotError, se
	}
	return noAnswer, se
}

func seText(se stanza.Error) string { return se.Text[""] }

// ---------------------------------------------------------------------------

// TestIntegrationKill9DuringAppends sends 1,000 appends at once through
// Prosody (10 accounts, 100 concurrent IQs each; one in five reuses a name,
// so that conflicts happen under load) to a "saslcert serve" child process,
// kill -9s it after 300 results and sends 20 more while it is down. After a
// restart, every append that got a result is stored (active, right account
// and name, exactly one audit entry), none that got a definite error is (a
// wait/remote-server-timeout from the plugin, like no answer at all, means
// the outcome is unknown), the database passes integrity_check, and the
// component serves again.
func TestIntegrationKill9DuringAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	const accounts = 10
	total := *killAppends
	st := stacktest.Start(t, stacktest.Options{Domain: domain, Process: true, PluginTimeout: 5 * time.Second,
		Limits: xep0257.Limits{MaxPerAccount: total + 10}, MaxInFlight: total + 100})
	users := make([]string, accounts)
	for i := range users {
		users[i] = fmt.Sprintf("writer%d", i)
	}
	st.RegisterMany(t, users, 4)
	clients := make([]*xmppclient.Client, accounts)
	for i, u := range users {
		c, err := st.LoginPassword(ctxT(t), u)
		if err != nil {
			t.Fatalf("login %s: %v", u, err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
	}

	type appendReq struct {
		user, name string
		cert       *certtest.Cert
		der        []byte
		out        outcome
		se         stanza.Error
		err        error
	}
	reqs := make([]*appendReq, total)
	for i := range reqs {
		u := users[i%accounts]
		c := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{u + "@" + domain}})
		name := fmt.Sprintf("k%04d", i)
		if (i/accounts)%5 == 4 {
			// One in five reuses the name of the account's previous
			// append: at most one of the two can be stored, and the
			// other must get conflict.
			name = fmt.Sprintf("k%04d", i-accounts)
		}
		reqs[i] = &appendReq{user: u, name: name, cert: c, der: c.DER}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var results, finished atomic.Int64
	progress := make(chan struct{}, total)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
			defer rcancel()
			err := xep0257.AppendCert(rctx, clients[i%accounts].Session, jid.JID{}, r.name, r.der, false)
			r.out, r.se = classify(err)
			r.err = err
			if r.out == okResult {
				results.Add(1)
			}
			finished.Add(1)
			progress <- struct{}{}
		})
	}
	began := time.Now()
	close(start)
	// Kill -9 once enough results are in.
	deadline := time.After(2 * time.Minute)
	for results.Load() < int64(*killAfter) && finished.Load() < int64(total) {
		select {
		case <-progress:
		case <-deadline:
			t.Fatalf("only %d results after 2 minutes", results.Load())
		}
	}
	comp := st.Comp()
	comp.Kill(t)
	atKill := results.Load()
	t.Logf("kill -9 of pid %d %v after the start, with %d results (%d of %d requests finished)",
		comp.Pid(), time.Since(began).Round(time.Millisecond), atKill, finished.Load(), total)

	// Appends sent while the component is down get an error and must not
	// be stored either.
	for i := range 20 {
		u := users[i%accounts]
		c := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{u + "@" + domain}})
		r := &appendReq{user: u, name: fmt.Sprintf("down%02d", i), cert: c, der: c.DER}
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		r.err = xep0257.AppendCert(rctx, clients[i%accounts].Session, jid.JID{}, r.name, r.der, false)
		rcancel()
		r.out, r.se = classify(r.err)
		reqs = append(reqs, r)
	}

	// Restart, then give the rest time to finish: requests sent to the dead
	// component get remote-server-timeout after saslcert_timeout (or never
	// an answer, if the client gives up first), so stop waiting once
	// nothing has finished for 5 s.
	st.StartComponent(t)
	quiet := time.NewTimer(5 * time.Second)
	for finished.Load() < int64(total) {
		select {
		case <-progress:
			quiet.Reset(5 * time.Second)
			continue
		case <-quiet.C:
		}
		break
	}
	cancel()
	wg.Wait()

	if v := st.IntegrityCheck(t); v != "ok" {
		t.Fatalf("integrity_check after kill -9: %s", v)
	}
	byFP := map[storage.Fingerprint]*storage.Cert{}
	for _, c := range st.Certs(t) {
		byFP[c.Fingerprint] = c
	}
	var nOK, nErr, nNone, noneStored int
	errKinds := map[string]int{}
	for _, r := range reqs {
		rec, stored := byFP[storage.FingerprintOf(r.der)]
		switch r.out {
		case okResult:
			nOK++
			switch {
			case !stored:
				t.Errorf("append %s of %s got a result but is not stored", r.name, r.user)
			case rec.Account != r.user+"@"+domain || rec.Name != r.name || rec.State != storage.StateActive:
				t.Errorf("append %s of %s stored as %s %q %s", r.name, r.user, rec.Account, rec.Name, rec.State)
			}
		case gotError:
			nErr++
			errKinds[fmt.Sprintf("%s/%s", r.se.Type, r.se.Condition)]++
			if stored {
				t.Errorf("append %s of %s got an error (%v) but is stored", r.name, r.user, r.err)
			}
		case noAnswer:
			nNone++
			if stored {
				noneStored++
			}
		}
	}
	// Every stored record is one of ours and has exactly its audit entry.
	db, err := st.OpenStore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	audit, err := db.Audit(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	adds := map[storage.Fingerprint]int{}
	for _, e := range audit {
		if e.Action == storage.ActionAdd {
			adds[e.Fingerprint]++
		}
	}
	for fp, c := range byFP {
		if adds[fp] != 1 {
			t.Errorf("record %s %q has %d add audit entries, want 1", c.Account, c.Name, adds[fp])
		}
	}
	if len(byFP) != nOK+noneStored {
		t.Errorf("%d records stored, want %d (results) + %d (unanswered but committed)", len(byFP), nOK, noneStored)
	}
	t.Logf("%d appends (+20 while down): %d results (all stored), %d errors (none stored) %v, %d unanswered (%d of them committed before the kill)",
		total, nOK, nErr, errKinds, nNone, noneStored)
	if nOK == total {
		t.Errorf("every append finished before the kill: the test proved nothing (lower -hostile.kill-after)")
	}

	// The restarted component serves: a login with a stored certificate.
	for _, r := range reqs {
		if r.out != okResult {
			continue
		}
		c, err := st.LoginCert(ctxT(t), r.user, r.cert, "")
		if err != nil {
			t.Fatalf("login after the restart with %s's %s: %v", r.user, r.name, err)
		}
		if got := c.LocalAddr().Bare().String(); got != r.user+"@"+domain {
			t.Errorf("logged in as %s, want %s@%s", got, r.user, domain)
		}
		c.Close()
		break
	}
}

// ---------------------------------------------------------------------------

// loginResult is what one EXTERNAL login attempt gave.
type loginResult struct {
	ok        bool
	bound     string // bare JID, on success
	condition string // SASL condition, on a SASL failure
	err       error  // anything else (connection refused, reset, ...)
	at        time.Time
}

func tryLogin(st *stacktest.Stack, user string, cert *certtest.Cert) loginResult {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := st.LoginCert(ctx, user, cert, "")
	r := loginResult{at: time.Now()}
	if err == nil {
		r.ok, r.bound = true, c.LocalAddr().Bare().String()
		c.Close()
		return r
	}
	var ae *xmppclient.AuthError
	if errors.As(err, &ae) {
		r.condition = ae.Condition
		return r
	}
	r.err = err
	return r
}

// TestIntegrationProsodyRestartUnderLoad restarts Prosody while 8 workers
// log in with EXTERNAL (one of them with a revoked certificate) and list
// their certificates. The component reconnects by itself, logins resume,
// no login ever succeeds as anyone but its owner, the revoked certificate
// never logs in, and the only failures are temporary-auth-failure and
// connection errors while Prosody or the link is down.
func TestIntegrationProsodyRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, stacktest.Options{Domain: domain, PluginTimeout: 5 * time.Second})
	const workers = 8
	certs := make([]*certtest.Cert, workers)
	users := make([]string, workers)
	for i := range certs {
		users[i] = fmt.Sprintf("user%d", i)
		certs[i] = stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{users[i] + "@" + domain}})
		st.AddCert(t, users[i], "main", certs[i], false)
	}
	st.RegisterMany(t, users, 4)
	// Worker 0 presents a revoked certificate.
	db, err := st.OpenStore(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetState(context.Background(), "user0@"+domain, "main", storage.StateRevoked, "test"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var mu sync.Mutex
	var all []loginResult
	var restartedAt, upAgainAt time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		u := fmt.Sprintf("user%d", i)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := tryLogin(st, u, certs[i])
				mu.Lock()
				all = append(all, r)
				mu.Unlock()
				switch {
				case r.ok && (i == 0 || r.bound != u+"@"+domain):
					t.Errorf("WRONG LOGIN: worker %d (%s) logged in as %s", i, u, r.bound)
				case i == 0 && r.condition != "" && r.condition != "not-authorized" && r.condition != "temporary-auth-failure":
					t.Errorf("revoked certificate: %s", r.condition)
				case i != 0 && r.condition != "" && r.condition != "temporary-auth-failure":
					t.Errorf("worker %d: SASL %s", i, r.condition)
				}
				if r.err != nil || r.condition == "temporary-auth-failure" {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(*restartFor)
	comp := st.Comp()
	before := comp.Connects()
	restartedAt = time.Now()
	st.S.Restart(t)
	t.Logf("Prosody restarted in %v", time.Since(restartedAt).Round(time.Millisecond))
	if err := comp.WaitConnects(before+1, time.Minute); err != nil {
		t.Fatalf("the component did not reconnect: %v", err)
	}
	upAgainAt = time.Now()
	t.Logf("the component reconnected %v after the restart began", upAgainAt.Sub(restartedAt).Round(time.Millisecond))
	time.Sleep(*restartFor)
	close(stop)
	wg.Wait()

	var okBefore, okAfter, tempFail, connErr, refusedRevoked int
	for _, r := range all {
		switch {
		case r.ok && r.at.Before(restartedAt):
			okBefore++
		case r.ok && r.at.After(upAgainAt):
			okAfter++
		case r.condition == "temporary-auth-failure":
			tempFail++
		case r.condition == "not-authorized":
			refusedRevoked++
		case r.err != nil:
			connErr++
		}
	}
	t.Logf("%d logins: %d ok before the restart, %d ok after the reconnect, %d temporary-auth-failure, %d connection errors, %d revoked-certificate refusals",
		len(all), okBefore, okAfter, tempFail, connErr, refusedRevoked)
	if okBefore == 0 || okAfter == 0 {
		t.Errorf("logins before/after the restart: %d/%d, want both > 0", okBefore, okAfter)
	}
	if refusedRevoked == 0 {
		t.Error("the revoked certificate was never refused with not-authorized")
	}
	if n := comp.Connects(); n != before+1 {
		t.Errorf("component connects: %d, want %d", n, before+1)
	}
}

// ---------------------------------------------------------------------------

// TestIntegrationStoreLockedByAnotherProcess has another process hold
// SQLite's write lock: appends and disables get wait/internal-server-error
// after the busy timeout and change nothing, while logins and listing (WAL
// readers) go on; when the lock goes, writes work again.
func TestIntegrationStoreLockedByAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	const busy = time.Second
	st := stacktest.Start(t, stacktest.Options{Domain: domain, BusyTimeout: busy})
	st.Register(t, "hamlet")
	login := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"hamlet@" + domain}})
	st.AddCert(t, "hamlet", "laptop", login, false)
	c, err := st.LoginPassword(ctxT(t), "hamlet")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	newDER := func() []byte {
		return stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"hamlet@" + domain}}).DER
	}

	before := st.Digest(t)
	release := st.LockDB(t)
	const want = "wait/internal-server-error: the certificate store is busy; try again"
	var wg sync.WaitGroup
	errs := make([]error, 5)
	took := make([]time.Duration, 5)
	for i := range errs {
		wg.Go(func() {
			t0 := time.Now()
			if i == 4 {
				errs[i] = xep0257.DisableCert(ctxT(t), c.Session, jid.JID{}, "laptop")
			} else {
				errs[i] = xep0257.AppendCert(ctxT(t), c.Session, jid.JID{}, fmt.Sprintf("locked%d", i), newDER(), false)
			}
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()
	for i, err := range errs {
		out, se := classify(err)
		got := fmt.Sprintf("%s/%s: %s", se.Type, se.Condition, seText(se))
		if out != gotError || got != want {
			t.Errorf("write %d under the lock: %v (%s), want %s", i, err, got, want)
		}
		t.Logf("write %d under the lock: %s after %v", i, got, took[i].Round(time.Millisecond))
	}
	// Readers are not blocked.
	if r := tryLogin(st, "hamlet", login); !r.ok {
		t.Errorf("EXTERNAL login while the database is locked: %+v", r)
	}
	if items, err := xep0257.Fetch(ctxT(t), c.Session, jid.JID{}); err != nil || len(items) != 1 {
		t.Errorf("items while the database is locked: %d, %v", len(items), err)
	}
	release()
	if after := st.Digest(t); after != before {
		t.Errorf("the refused writes changed the store:\nbefore: %s\n after: %s", before, after)
	}
	if err := xep0257.AppendCert(ctxT(t), c.Session, jid.JID{}, "after-the-lock", newDER(), false); err != nil {
		t.Fatalf("append after the lock went: %v", err)
	}
	if err := xep0257.DisableCert(ctxT(t), c.Session, jid.JID{}, "laptop"); err != nil {
		t.Fatalf("disable after the lock went: %v", err)
	}
}

// ---------------------------------------------------------------------------

// TestIntegrationDiskFull puts the data directory on a 4 MiB tmpfs, fills
// it, and appends until the store refuses: the client gets a wait error,
// the component logs SQLite's "database or disk is full", the refused
// append changed nothing, every acknowledged one is there, logins go on,
// the file passes integrity_check, and appends work again once space
// returns. Where tmpfs cannot be mounted it uses RLIMIT_FSIZE on a child
// "saslcert serve" instead (-hostile.diskfull=rlimit forces that).
func TestIntegrationDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	mode := *diskFullMode
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if mode == "auto" || mode == "tmpfs" {
		out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", dir).CombinedOutput()
		switch {
		case err == nil:
			mode = "tmpfs"
			t.Cleanup(func() {
				if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
					t.Errorf("umount %s: %v %s", dir, err, out)
				}
			})
		case mode == "tmpfs":
			t.Fatalf("mount -t tmpfs: %v: %s", err, out)
		default:
			t.Logf("mount -t tmpfs failed (%v: %s); using RLIMIT_FSIZE on a child saslcert serve instead", err, strings.TrimSpace(string(out)))
			mode = "rlimit"
		}
	}
	switch mode {
	case "tmpfs":
		diskFullTmpfs(t, dir)
	case "rlimit":
		diskFullRlimit(t, dir)
	default:
		t.Fatalf("-hostile.diskfull=%q: want tmpfs, rlimit or auto", mode)
	}
}

// fullDiskRun is what the two disk-full variants share: appends until the
// store refuses, checks, then recovery once makeRoom has run.
func fullDiskRun(t *testing.T, st *stacktest.Stack, c *xmppclient.Client, login *certtest.Cert, makeRoom func()) {
	acked := map[storage.Fingerprint]string{}
	var refusedAt int
	var refusal stanza.Error
	for i := range 2000 {
		der := stacktest.NewCert(t, certtest.Options{CommonName: strings.Repeat("x", 200), XMPPAddrs: []string{"hamlet@" + domain}}).DER
		before := st.Digest(t)
		err := xep0257.AppendCert(ctxT(t), c.Session, jid.JID{}, fmt.Sprintf("fill%04d", i), der, false)
		out, se := classify(err)
		if out == okResult {
			acked[storage.FingerprintOf(der)] = fmt.Sprintf("fill%04d", i)
			continue
		}
		if out != gotError {
			t.Fatalf("append %d on a full disk: no answer: %v", i, err)
		}
		refusedAt, refusal = i, se
		if after := st.Digest(t); after != before {
			t.Errorf("the refused append changed the store:\nbefore: %s\n after: %s", before, after)
		}
		break
	}
	if refusal.Condition == "" {
		t.Fatalf("2000 appends on a full disk all succeeded")
	}
	got := fmt.Sprintf("%s/%s: %s", refusal.Type, refusal.Condition, seText(refusal))
	t.Logf("append %d refused: %s (%d acknowledged before)", refusedAt, got, len(acked))
	if got != "wait/internal-server-error: the certificate store is busy; try again" {
		t.Errorf("refusal on a full disk: %s", got)
	}
	var cause string
	for _, line := range strings.Split(st.Comp().Log(), "\n") {
		if strings.Contains(line, "database or disk is full") || strings.Contains(line, "disk I/O error") {
			cause = line
			break
		}
	}
	if cause == "" {
		t.Errorf("the component's log does not name the cause (SQLite's \"database or disk is full\"):\n%s", st.Comp().Log())
	}
	t.Logf("the component logged: %s", cause)
	if r := tryLogin(st, "hamlet", login); !r.ok {
		t.Errorf("EXTERNAL login on a full disk: %+v", r)
	}
	if v := st.IntegrityCheck(t); v != "ok" {
		t.Errorf("integrity_check on a full disk: %s", v)
	}
	makeRoom()
	if err := xep0257.AppendCert(ctxT(t), c.Session, jid.JID{}, "after-the-disk-was-freed",
		stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"hamlet@" + domain}}).DER, false); err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	byFP := map[storage.Fingerprint]bool{}
	for _, rec := range st.Certs(t) {
		byFP[rec.Fingerprint] = true
	}
	for fp, name := range acked {
		if !byFP[fp] {
			t.Errorf("acknowledged append %s is lost", name)
		}
	}
	if v := st.IntegrityCheck(t); v != "ok" {
		t.Errorf("integrity_check after recovery: %s", v)
	}
}

func diskFullTmpfs(t *testing.T, dir string) {
	st := stacktest.Start(t, stacktest.Options{Domain: domain, DataDir: dir, Limits: xep0257.Limits{MaxPerAccount: 5000}})
	st.Register(t, "hamlet")
	login := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"hamlet@" + domain}})
	st.AddCert(t, "hamlet", "laptop", login, false)
	c, err := st.LoginPassword(ctxT(t), "hamlet")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Fill the file system.
	filler := filepath.Join(dir, "filler")
	f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	var n int64
	for {
		m, err := f.Write(chunk)
		n += int64(m)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the tmpfs: %v", err)
			}
			break
		}
	}
	// Leave a little room, so that some appends succeed before the disk
	// is full.
	const room = 160 << 10
	if err := f.Truncate(max(n-room, 0)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Logf("tmpfs %s filled with %d KiB, %d KiB left free", dir, (n-room)>>10, room>>10)
	fullDiskRun(t, st, c, login, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	})
}

// diskFullRlimit runs "saslcert serve" under prlimit --fsize: SQLite's
// writes beyond the limit fail with EFBIG (Go ignores SIGXFSZ), which
// SQLite reports as an I/O error or "database or disk is full". Recovery is
// a restart without the limit.
func diskFullRlimit(t *testing.T, dir string) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skipf("neither tmpfs nor prlimit is available: %v", err)
	}
	st := stacktest.Start(t, stacktest.Options{Domain: domain, DataDir: dir, Process: true, NoComponent: true,
		Limits: xep0257.Limits{MaxPerAccount: 5000}})
	st.Register(t, "hamlet")
	login := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"hamlet@" + domain}})
	st.AddCert(t, "hamlet", "laptop", login, false)
	// The limit: the current database and WAL plus ~256 KiB.
	var size int64
	for _, name := range []string{stacktest.DBFile, stacktest.DBFile + "-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			size = max(size, fi.Size())
		}
	}
	st.Opts.Wrapper = []string{"prlimit", fmt.Sprintf("--fsize=%d", size+256<<10), "--"}
	st.StartComponent(t)
	c, err := st.LoginPassword(ctxT(t), "hamlet")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fullDiskRun(t, st, c, login, func() {
		if err := st.Comp().Stop(); err != nil {
			t.Logf("stopping the limited component: %v", err)
		}
		st.Opts.Wrapper = nil
		st.StartComponent(t)
	})
}

// ---------------------------------------------------------------------------

// TestIntegrationComponentDownDuringLogins kill -9s the component while 16
// EXTERNAL logins are under way, then tries 20 more while it is down: every
// login either succeeded as its owner before the kill or got
// temporary-auth-failure; none of those started while it was down
// succeeded. After a restart, logins work again.
func TestIntegrationComponentDownDuringLogins(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, stacktest.Options{Domain: domain, Process: true, PluginTimeout: 3 * time.Second})
	const n = 16
	certs := make([]*certtest.Cert, n)
	users := make([]string, n)
	for i := range certs {
		users[i] = fmt.Sprintf("user%d", i)
		certs[i] = stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{users[i] + "@" + domain}})
		st.AddCert(t, users[i], "main", certs[i], false)
	}
	st.RegisterMany(t, users, 4)
	check := func(phase string, i int, r loginResult, mayPass bool) {
		switch {
		case r.ok && (!mayPass || r.bound != fmt.Sprintf("user%d@%s", i, domain)):
			t.Errorf("%s: WRONG LOGIN: user%d logged in as %s", phase, i, r.bound)
		case !r.ok && r.condition != "temporary-auth-failure":
			t.Errorf("%s: user%d: condition %q, error %v; want temporary-auth-failure", phase, i, r.condition, r.err)
		}
	}
	// Up: all succeed.
	for i := range 3 {
		if r := tryLogin(st, fmt.Sprintf("user%d", i), certs[i]); !r.ok {
			t.Fatalf("login while up: %+v", r)
		}
	}
	// Logins in flight during the kill.
	// The kill comes right after the first of them succeeds, so that the
	// others are somewhere between TLS and the lookup's answer.
	results := make([]loginResult, n)
	first := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = tryLogin(st, fmt.Sprintf("user%d", i), certs[i])
			once.Do(func() { close(first) })
		})
	}
	<-first
	st.Comp().Kill(t)
	wg.Wait()
	var inflightOK int
	for i, r := range results {
		check("in flight at the kill", i, r, true)
		if r.ok {
			inflightOK++
		}
	}
	t.Logf("%d logins in flight at the kill: %d succeeded before it, %d got temporary-auth-failure", n, inflightOK, n-inflightOK)
	// Down: every login gets temporary-auth-failure.
	down := make([]loginResult, 20)
	for i := range down {
		wg.Go(func() { down[i] = tryLogin(st, fmt.Sprintf("user%d", i%n), certs[i%n]) })
	}
	wg.Wait()
	for i, r := range down {
		check("component down", i%n, r, false)
	}
	t.Logf("20 logins while the component was down: all temporary-auth-failure")
	st.StartComponent(t)
	for i := range 3 {
		if r := tryLogin(st, fmt.Sprintf("user%d", i), certs[i]); !r.ok || r.bound != fmt.Sprintf("user%d@%s", i, domain) {
			t.Errorf("login after the restart: %+v", r)
		}
	}
}

// ---------------------------------------------------------------------------

// TestIntegrationFrozenComponentDuringLogins freezes the component
// (SIGSTOP) while 300 EXTERNAL logins are under way and thaws it 2 s later,
// well within saslcert_timeout: every login succeeds as its owner, none
// fails. (Before commit af57309 the plugin used module:send_iq, whose
// per-module tracking cache in Prosody 0.12 holds 256 IQs: the 257th
// evicted the oldest, and about 100 of these logins failed with
// temporary-auth-failure, "evicted from iq tracking cache".)
func TestIntegrationFrozenComponentDuringLogins(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	const accounts, logins = 10, 300
	st := stacktest.Start(t, stacktest.Options{Domain: domain, Process: true, PluginTimeout: 30 * time.Second})
	users := make([]string, accounts)
	certs := make([]*certtest.Cert, accounts)
	for i := range users {
		users[i] = fmt.Sprintf("crowd%d", i)
		certs[i] = stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{users[i] + "@" + domain}})
		st.AddCert(t, users[i], "main", certs[i], false)
	}
	st.RegisterMany(t, users, 4)
	pid := st.Comp().Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	defer thaw()
	results := make([]loginResult, logins)
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() { results[i] = tryLogin(st, users[i%accounts], certs[i%accounts]) })
	}
	// Wait until Prosody has asked about all of them (or 20 s), then thaw.
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(st.S.Log(), "Asking "+st.ComponentJID+" about certificate") < logins && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	thaw()
	wg.Wait()
	var ok, temp, other int
	for i, r := range results {
		switch {
		case r.ok && r.bound == users[i%accounts]+"@"+domain:
			ok++
		case r.ok:
			t.Errorf("WRONG LOGIN: %s logged in as %s", users[i%accounts], r.bound)
		case r.condition == "temporary-auth-failure":
			temp++
		default:
			other++
			t.Errorf("login %d: not logged in and no SASL failure: %v (at %s)", i, r.err, r.at.Format(time.RFC3339Nano))
		}
	}
	evicted := strings.Count(st.S.Log(), "evicted from iq tracking cache")
	t.Logf("%d logins with the component frozen for 2 s: %d succeeded, %d temporary-auth-failure, %d other; Prosody logged %d evictions",
		logins, ok, temp, other, evicted)
	if temp > 0 {
		t.Errorf("%d logins failed although the component answered within saslcert_timeout (%d \"evicted from iq tracking cache\" in Prosody's log)", temp, evicted)
	}
}
