package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/xep0257"
)

// Profiling (-profile DIR). Profiled runs are slower (a Lua debug hook in
// every Prosody, a CPU profiler in every component): read them for where
// the time goes, never for the ratios.
//
//   - Go: the components run as children of this program
//     (componentChildArg) with the same wiring as `saslcert serve` and its
//     defaults (store, XEP-0257 handler, authorizer; no enrollment, which
//     the benchmark does not configure either), so that runtime/pprof can
//     sample them; each timed phase is
//     one CPU profile, DIR/<instance>-<phase>-r<round>.pprof, summarised
//     with `go tool pprof -top` at the end.
//   - Lua: mod_benche2e_profile (written to the temp dir, loaded on every
//     instance) samples every Prosody thread every profileEvery VM
//     instructions and charges the CPU time since the previous sample
//     (os.clock) to the running function (self) and to every function on
//     the stack (inclusive). C time (TLS, XML parsing, system calls) is
//     charged to the Lua function that called it. The benchmark labels each
//     phase with an IQ on a control session; DIR/<instance>.lua.tsv has the
//     totals.

// componentChildArg as the first argument makes this program the component.
const componentChildArg = "-component-child"

// profileNS is the control IQ namespace of mod_benche2e_profile.
const profileNS = "urn:x-saslcert-benche2e:profile"

// profileEvery is the Lua hook's sampling period in VM instructions.
const profileEvery = 1000

const luaProfiler = `-- mod_benche2e_profile: a sampling profiler for benchmark runs of
-- internal/cmd/benche2e -profile. Never load it in a deployment.
local st = require "util.stanza";
local clock, getinfo, sethook = os.clock, debug.getinfo, debug.sethook;
local out_file = module:get_option_string("benche2e_profile_file");
local every = module:get_option_number("benche2e_profile_every", 200);

local label = "setup";
local self_t, incl_t, names = {}, {}, {};
local last = clock();

local function hook()
	local now = clock();
	local dt = now - last;
	last = now;
	local info = getinfo(2, "Sn");
	if not info then return; end
	local key = info.short_src .. ":" .. info.linedefined;
	if info.name and not names[key] then names[key] = info.name; end
	local s = self_t[label];
	if not s then s = {}; self_t[label] = s; end
	s[key] = (s[key] or 0) + dt;
	local inc = incl_t[label];
	if not inc then inc = {}; incl_t[label] = inc; end
	local seen = {};
	for level = 2, 60 do
		local f = getinfo(level, "S");
		if not f then break; end
		local k = f.short_src .. ":" .. f.linedefined;
		if not seen[k] then
			seen[k] = true;
			inc[k] = (inc[k] or 0) + dt;
		end
	end
end

-- Hooks are per Lua thread: the main thread, and every coroutine created
-- from now on (util.async looks coroutine.create up at each call).
sethook(debug.getregistry()[1], hook, "", every);
sethook(hook, "", every);
-- (Prosody 0.12 with server_epoll makes no coroutine.wrap on these paths.)
local co_create = coroutine.create;
coroutine.create = function (f)
	local co = co_create(f);
	sethook(co, hook, "", every);
	return co;
end

local function dump()
	local f = assert(io.open(out_file, "w"));
	for _, kind in ipairs({ "self", "incl" }) do
		local t = kind == "self" and self_t or incl_t;
		for l, keys in pairs(t) do
			for k, secs in pairs(keys) do
				f:write(l, "\t", kind, "\t", string.format("%.6f", secs), "\t", k, "\t", names[k] or "?", "\n");
			end
		end
	end
	f:close();
end

module:hook("iq-set/self/` + profileNS + `:profile", function (event)
	local p = event.stanza.tags[1];
	last = clock();
	label = p.attr.label or label;
	if p.attr.dump then dump(); end
	event.origin.send(st.reply(event.stanza));
	return true;
end);
`

// writeLuaProfiler puts mod_benche2e_profile.lua into dir.
func writeLuaProfiler(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "mod_benche2e_profile.lua"), []byte(luaProfiler), 0o600)
}

func profileIQ(id, label string, dump bool) string {
	d := ""
	if dump {
		d = " dump='1'"
	}
	return "<iq type='set' id='" + id + "'><profile xmlns='" + profileNS + "' label='" + label + "'" + d + "/></iq>"
}

// componentChild runs the component as `saslcert serve` does, with its
// defaults, and takes profiling commands on standard input: "start <file>"
// starts a CPU profile, "stop" ends it.
func componentChild(args []string) {
	fs := flag.NewFlagSet(componentChildArg, flag.ExitOnError)
	addr := fs.String("server-addr", "", "")
	comp := fs.String("component", "", "")
	domain := fs.String("domain", "", "")
	secretFile := fs.String("secret-file", "", "")
	dataDir := fs.String("data-dir", "", "")
	_ = fs.Parse(args)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fail := func(err error) {
		log.Error("component child failed", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	secret, err := os.ReadFile(*secretFile)
	if err != nil {
		fail(err)
	}
	line, _, _ := strings.Cut(string(secret), "\n")
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		fail(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(*dataDir, dbFile), sqlite.Options{Logger: log, BusyTimeout: 5 * time.Second})
	if err != nil {
		fail(err)
	}
	defer db.Close()
	policy := sasl.DefaultPolicy()
	// saslcert serve's wiring and defaults.
	var c *component.Component
	store := storage.Observe(db, func(ctx context.Context, account string) { c.NotifyChanged(ctx, account) })
	certs := &xep0257.Handler{
		Store:   store,
		Policy:  policy,
		Limits:  xep0257.DefaultLimits(),
		Now:     time.Now,
		Logger:  log.With("part", "xep0257"),
		Timeout: component.DefaultRequestTimeout,
	}
	auth := &sasl.Authorizer{Store: db, Now: time.Now, Policy: policy}
	c, err = component.New(component.Config{
		Addr:          *addr,
		JID:           jid.MustParse(*comp),
		Secret:        []byte(strings.TrimSpace(line)),
		ServerDomains: []string{*domain},
		CacheTTL:      60 * time.Second,
		Logger:        log.With("part", "component"),
	}, certs, auth)
	if err != nil {
		fail(err)
	}
	go profileCommands(os.Stdin, log)
	if err := c.Run(ctx); err != nil {
		fail(err)
	}
	pprof.StopCPUProfile()
}

func profileCommands(r io.Reader, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	var f *os.File
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "start":
			var err error
			if f, err = os.Create(arg); err == nil {
				// 1 kHz instead of 100 Hz: a phase costs the component
				// only tenths of a second. StartCPUProfile then logs that
				// it cannot set its own rate; the profile records 1 kHz.
				runtime.SetCPUProfileRate(1000)
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				log.Error("cannot start the CPU profile", "err", err)
			}
		case "stop":
			pprof.StopCPUProfile()
			if f != nil {
				f.Close()
				f = nil
			}
		}
	}
}

// profiler drives the profiles of one run.
type profiler struct {
	dir string
}

// luaRow is one line of a Lua profile dump.
type luaRow struct {
	secs      float64
	key, name string
}

// readLuaProfile reads DIR/<instance>.lua.tsv: label -> kind -> rows,
// largest first.
func readLuaProfile(path string) (map[string]map[string][]luaRow, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]luaRow{}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			continue
		}
		secs, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			continue
		}
		if out[f[0]] == nil {
			out[f[0]] = map[string][]luaRow{}
		}
		out[f[0]][f[1]] = append(out[f[0]][f[1]], luaRow{secs, f[3], f[4]})
	}
	for _, kinds := range out {
		for _, rows := range kinds {
			slices.SortFunc(rows, func(a, b luaRow) int {
				switch {
				case a.secs > b.secs:
					return -1
				case a.secs < b.secs:
					return 1
				}
				return strings.Compare(a.key, b.key)
			})
		}
	}
	return out, nil
}

// summary writes the Lua and Go profiles per instance and phase.
func (p *profiler) summary(w io.Writer, b *bench) error {
	fmt.Fprintf(w, "\n== profiles (-profile %s; a profiled run is slower: use these for where the time goes, not for ratios)\n", p.dir)
	for _, in := range b.instances {
		lp, err := readLuaProfile(filepath.Join(p.dir, in.name+".lua.tsv"))
		if err != nil {
			fmt.Fprintf(w, "%s: no Lua profile: %v\n", in.name, err)
			continue
		}
		for _, ph := range b.phases() {
			r := in.res[ph.key]
			if r == nil {
				continue
			}
			var total float64
			for _, row := range lp[ph.key]["self"] {
				total += row.secs
			}
			fmt.Fprintf(w, "\n-- %s, %s: Prosody, sampled Lua CPU %.3f ms/op in this profiled run; top functions by self time:\n"+
				"   %%self   ms/op self | inclusive  function (source:line where defined, name as called)\n",
				in.name, ph.title, 1000*total/float64(r.n))
			incl := map[string]float64{}
			for _, row := range lp[ph.key]["incl"] {
				incl[row.key] = row.secs
			}
			for i, row := range lp[ph.key]["self"] {
				if i == 12 {
					break
				}
				fmt.Fprintf(w, "   %4.1f%%  %7.3f | %7.3f  %s (%s)\n", 100*row.secs/total, 1000*row.secs/float64(r.n), 1000*incl[row.key]/float64(r.n), row.key, row.name)
			}
			fmt.Fprintf(w, "   largest inclusive (%%, ms/op):\n")
			for i, row := range lp[ph.key]["incl"] {
				if i == 16 {
					break
				}
				fmt.Fprintf(w, "   %5.1f%%  %7.3f  %s\n", 100*row.secs/total, 1000*row.secs/float64(r.n), row.key)
			}
			if in.peer {
				continue
			}
			files, _ := filepath.Glob(filepath.Join(p.dir, fmt.Sprintf("%s-%s-r*.pprof", in.name, ph.key)))
			if len(files) == 0 {
				continue
			}
			args := append([]string{"tool", "pprof", "-top", "-nodecount=22"}, files...)
			out, err := exec.Command("go", args...).CombinedOutput()
			if err != nil {
				fmt.Fprintf(w, "   go tool pprof: %v\n", err)
				continue
			}
			fmt.Fprintf(w, "   component (pprof, %d profiles merged; go tool pprof -top %s):\n", len(files), filepath.Join(p.dir, fmt.Sprintf("%s-%s-r*.pprof", in.name, ph.key)))
			for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
				fmt.Fprintf(w, "   | %s\n", line)
			}
		}
	}
	return nil
}

// label tells an instance's Prosody (and component) which phase runs now.
func (b *bench) profileStart(ctx context.Context, in *instance, phase string, round int) error {
	if b.prof == nil {
		return nil
	}
	if in.comp != nil && in.comp.stdin != nil {
		if _, err := fmt.Fprintf(in.comp.stdin, "start %s\n", filepath.Join(b.prof.dir, fmt.Sprintf("%s-%s-r%d.pprof", in.name, phase, round))); err != nil {
			return err
		}
	}
	_, err := in.control.call(ctx, "pl", profileIQ("pl", phase, false))
	return err
}

func (b *bench) profileStop(ctx context.Context, in *instance, dump bool) error {
	if b.prof == nil {
		return nil
	}
	if in.comp != nil && in.comp.stdin != nil {
		if _, err := fmt.Fprintf(in.comp.stdin, "stop\n"); err != nil {
			return err
		}
	}
	if in.control == nil {
		return errors.New("no control session")
	}
	_, err := in.control.call(ctx, "pl", profileIQ("pl", "idle", dump))
	return err
}
