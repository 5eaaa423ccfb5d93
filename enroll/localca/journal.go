package localca

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// compactEvery is how many journal lines are kept before the journal is
// folded into RevokedFile (which is also done whenever a CRL is made).
const compactEvery = 512

// revCache is the revocation state of RevokedFile plus JournalFile as this
// process last read it, with an index by serial number, so that a
// revocation costs one appended line and a lookup reads only what other
// processes appended since — neither grows with the list. RevokedFile is
// rewritten (O(list)) only when a CRL is made or the journal has grown to
// compactEvery lines.
type revCache struct {
	snap    os.FileInfo // RevokedFile when read; nil: not read (or absent)
	st      *state      // RevokedFile's state with the journal's entries appended
	serials map[string]bool
	off     int64 // bytes of JournalFile read
	lines   int   // complete lines in JournalFile
}

// load brings ca.cache up to date with the files and returns the merged
// state (Revision counts the journal's lines too). The caller holds the
// lock and must not change the result except through revoke and compact.
func (ca *CA) load() (*state, error) {
	c := &ca.cache
	snapPath := filepath.Join(ca.dir, RevokedFile)
	fi, err := os.Stat(snapPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fi = nil
	case err != nil:
		return nil, fmt.Errorf("localca: %w", err)
	}
	same := c.st != nil && ((fi == nil && c.snap == nil) ||
		(fi != nil && c.snap != nil && os.SameFile(fi, c.snap) && fi.Size() == c.snap.Size() && fi.ModTime().Equal(c.snap.ModTime())))
	if !same {
		st, err := ca.readState()
		if err != nil {
			return nil, err
		}
		*c = revCache{snap: fi, st: st, serials: make(map[string]bool, len(st.Revoked))}
		for _, e := range st.Revoked {
			c.serials[e.Serial] = true
		}
	}
	return c.st, ca.readJournal()
}

// readJournal applies the journal's lines after c.off. A last line without
// its newline (a write cut short by a crash) is cut off the file. A journal
// shorter than what was read means another process folded it: everything
// is read again.
func (ca *CA) readJournal() error {
	c := &ca.cache
	path := filepath.Join(ca.dir, JournalFile)
	f, err := os.OpenFile(path, os.O_RDWR, dataMode)
	if errors.Is(err, fs.ErrNotExist) {
		if c.off > 0 {
			c.st = nil
			_, err := ca.load()
			return err
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	if fi.Size() < c.off {
		c.st = nil
		f.Close()
		_, err := ca.load()
		return err
	}
	if fi.Size() == c.off {
		return nil
	}
	data := make([]byte, fi.Size()-c.off)
	if _, err := f.ReadAt(data, c.off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("localca: %w", err)
	}
	for len(data) > 0 {
		line, rest, ok := bytes.Cut(data, []byte{'\n'})
		if !ok {
			if err := f.Truncate(c.off); err != nil {
				return fmt.Errorf("localca: %s: cutting off a torn last line: %w", JournalFile, err)
			}
			break
		}
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("localca: %s: line %d: %w", JournalFile, c.lines+1, err)
		}
		c.apply(e)
		c.off += int64(len(line)) + 1
		c.lines++
		data = rest
	}
	return nil
}

// apply adds e to the cached state (a serial already there keeps its first
// revocation) and counts a revision.
func (c *revCache) apply(e entry) {
	c.st.Revision++
	if c.serials[e.Serial] {
		return
	}
	c.serials[e.Serial] = true
	c.st.Revoked = append(c.st.Revoked, e)
}

// appendJournal records e durably as one line of the journal and in the
// cache. The caller holds the lock and has called load.
func (ca *CA) appendJournal(e entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	line = append(line, '\n')
	path := filepath.Join(ca.dir, JournalFile)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, dataMode)
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("localca: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("localca: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := syncDir(ca.dir); err != nil {
			return fmt.Errorf("localca: %w", err)
		}
	}
	c := &ca.cache
	c.apply(e)
	c.off += int64(len(line))
	c.lines++
	return nil
}

// compact writes the cached state (expired entries dropped) to RevokedFile
// and empties the journal. A crash in between leaves entries in both, which
// load reads as one. The caller holds the lock and has called load.
func (ca *CA) compact(now time.Time) error {
	c := &ca.cache
	kept := c.st.Revoked[:0:0]
	for _, e := range c.st.Revoked {
		if !e.NotAfter.Before(now) {
			kept = append(kept, e)
		}
	}
	c.st.Revoked = kept
	if err := ca.writeState(c.st); err != nil {
		return err
	}
	if err := os.Truncate(filepath.Join(ca.dir, JournalFile), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("localca: %w", err)
	}
	c.st = nil // read again next time: RevokedFile is new
	return nil
}
