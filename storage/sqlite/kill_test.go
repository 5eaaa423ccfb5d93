package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// helperEnv names the database the helper process writes to.
const helperEnv = "SASLCERT_SQLITE_KILL_HELPER_DB"

// TestHelperProcess is not a test: TestKill9 runs the test binary again with
// -test.run=^TestHelperProcess$ and helperEnv set. It then adds records from
// four goroutines until killed, printing "ack <fingerprint hex>" after each
// AddCert returned nil and "revoked <fingerprint hex>" after each
// SetStateByFingerprint to revoked returned nil.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestKill9")
	}
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(what string, fp storage.Fingerprint) {
		mu.Lock()
		defer mu.Unlock()
		// os.Stdout is unbuffered: the line is in the pipe when this returns.
		fmt.Fprintf(os.Stdout, "%s %x\n", what, fp[:])
	}
	var host [4]byte
	rand.Read(host[:])
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var prev storage.Fingerprint
			for i := 0; ; i++ {
				der := make([]byte, 600)
				rand.Read(der)
				c := &storage.Cert{
					Account:     fmt.Sprintf("kill-%x-%d@example.org", host, w),
					Name:        fmt.Sprintf("c%d", i),
					DER:         der,
					Fingerprint: storage.FingerprintOf(der),
					NotBefore:   time.Now(),
					NotAfter:    time.Now().Add(time.Hour),
					Source:      storage.SourceUpload,
				}
				if err := db.AddCert(context.Background(), c, storage.AddOptions{Actor: "helper"}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				say("ack", c.Fingerprint)
				if i%5 == 4 {
					if _, err := db.SetStateByFingerprint(context.Background(), prev, storage.StateRevoked, "helper"); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					say("revoked", prev)
				}
				prev = c.Fingerprint
			}
		})
	}
	wg.Wait()
}

// TestKill9 kills a writing process (SIGKILL on Unix) several times and
// checks after each kill that every acknowledged write is in the database
// and that the database is intact.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	const rounds, acksPerRound = 3, 200
	path := filepath.Join(t.TempDir(), "certs.db")
	added := map[storage.Fingerprint]bool{}
	revoked := map[storage.Fingerprint]bool{}
	for round := range rounds {
		var stderr bytes.Buffer
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		acks, killed := 0, false
		for sc.Scan() {
			what, hexfp, ok := strings.Cut(sc.Text(), " ")
			b, err := hex.DecodeString(hexfp)
			if !ok || err != nil || len(b) != 32 {
				continue // not ours (e.g. test framework output)
			}
			fp := storage.Fingerprint(b)
			switch what {
			case "ack":
				added[fp] = true
				acks++
			case "revoked":
				revoked[fp] = true
			}
			if acks == acksPerRound && !killed {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true // lines already in the pipe are acks too: read on to EOF
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: helper ended after %d acks: %v\n%s", round, acks, err, stderr.Bytes())
		}

		checkIntegrity(t, path)
		db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		for fp := range added {
			c, err := db.FindCertByFingerprint(t.Context(), fp)
			if err != nil {
				t.Fatalf("round %d: acknowledged %s lost: %v", round, fp, err)
			}
			if revoked[fp] && c.State != storage.StateRevoked {
				t.Fatalf("round %d: acknowledged revocation of %s lost: state %s", round, fp, c.State)
			}
		}
		db.Close()
		t.Logf("round %d: %d records acknowledged, %d revocations, all present", round, len(added), len(revoked))
	}
}

// checkIntegrity runs PRAGMA integrity_check on path through its own
// connection.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var res string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Fatalf("integrity_check: %s", res)
	}
}
