package storetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// Durability is the part of the contract a store's doc states first: a
// method that returned nil after a change has made it durable; it survives
// a kill -9 of the writing process. Its test runs a writer in a child
// process (the test binary run again), kills it several times and checks
// after each kill that every acknowledged write is in the store.
//
// A backend's tests wire it with two tests:
//
//	func TestHelperProcess(t *testing.T) { storetest.Writer(t, backend) }
//	func TestKill9(t *testing.T)         { storetest.Kill9(t, backend) }
type Durability struct {
	// Open opens the store at location, in the test and in the child
	// process.
	Open func(ctx context.Context, location string) (storage.Store, error)
	// Location returns a fresh, empty location for one test (e.g. a file
	// in t.TempDir(), or a database name on a test server).
	Location func(t *testing.T) string
	// Check, if set, checks the backend's own integrity at location after
	// a kill (e.g. SQLite's PRAGMA integrity_check).
	Check func(t *testing.T, location string)
	// HelperTest is the name of the test that calls Writer
	// ("TestHelperProcess" if empty).
	HelperTest string
}

// writerEnv names the location the child process writes to.
const writerEnv = "SASLCERT_STORETEST_WRITER"

// Writer is the child process of Kill9, not a test: run in the test binary
// again with writerEnv set, it adds records from four goroutines until
// killed, printing "ack <fingerprint hex>" after each AddCert returned nil
// and "revoked <fingerprint hex>" after each SetStateByFingerprint to
// revoked returned nil. Without writerEnv it skips.
func Writer(t *testing.T, d Durability) {
	location := os.Getenv(writerEnv)
	if location == "" {
		t.Skip("helper process for TestKill9")
	}
	db, err := d.Open(context.Background(), location)
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

// Kill9 kills a writing child process (SIGKILL on Unix) several times and
// checks after each kill that every acknowledged write is in the store and
// (with d.Check) that the store is intact. Skipped with -short.
func Kill9(t *testing.T, d Durability) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	helper := d.HelperTest
	if helper == "" {
		helper = "TestHelperProcess"
	}
	const rounds, acksPerRound = 3, 200
	location := d.Location(t)
	added := map[storage.Fingerprint]bool{}
	revoked := map[storage.Fingerprint]bool{}
	for round := range rounds {
		var stderr bytes.Buffer
		cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), writerEnv+"="+location)
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

		if d.Check != nil {
			d.Check(t, location)
		}
		db, err := d.Open(t.Context(), location)
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
