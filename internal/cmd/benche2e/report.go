package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func quantile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[i]
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// roundRatios is the range of the per-round ratios of a over b.
func roundRatios(a, b *result) string {
	if a == nil || b == nil || len(a.perRound) != len(b.perRound) || len(a.perRound) == 0 {
		return ""
	}
	lo, hi := 1e18, 0.0
	for i := range a.perRound {
		r := ratio(a.perRound[i], b.perRound[i])
		lo, hi = min(lo, r), max(hi, r)
	}
	return fmt.Sprintf("%.2f-%.2f", lo, hi)
}

func (b *bench) byName(name string) *instance {
	for _, in := range b.instances {
		if in.name == name {
			return in
		}
	}
	return nil
}

// report prints the machine, the table and the RATIO line.
func (b *bench) report(w io.Writer) {
	peer, ours := b.byName("peer"), b.byName("ours")
	var big *instance
	for _, in := range b.instances {
		if !in.peer && in.fill > 0 {
			big = in
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "== bench-e2e %s\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s; load average %s at start, %s at end\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), b.load0, loadAvg())
	fmt.Fprintf(w, "prosody %s; %d accounts with 1 certificate each on every instance", prosodyVersion(), b.cfg.users)
	if big != nil {
		fmt.Fprintf(w, "; %s: + %d filler certificates in SQLite", big.name, big.fill)
	}
	for _, in := range b.instances {
		if in.peer && in.fill > 0 {
			fmt.Fprintf(w, "; %s: + %d filler accounts x 1 certificate in flat files", in.name, in.fill)
		}
	}
	fmt.Fprintln(w)
	ttl := b.cfg.cacheTTL
	if ttl == "" {
		ttl = "serve's default"
	}
	fmt.Fprintf(w, "%d rounds x (%d logins, %d IQs per IQ phase) per instance, phases alternating %s; window %d; prosody log level %s; plugin cache TTL %s\n",
		b.cfg.rounds, b.cfg.logins, b.cfg.iqs, b.order(), b.cfg.window, b.cfg.prosodyLog, ttl)
	fmt.Fprintf(w, "logins use each account once (cold: nothing cached); items repeat over %d accounts (after the first, answered from the plugin's cache unless the TTL is 0)\n\n",
		b.cfg.itemSessions)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"", ""}
	for _, in := range b.instances {
		head = append(head, in.name)
	}
	head = append(head, "ours/peer", "per round")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	row := func(phase, metric string, cell func(*instance) string, rat string, rounds string) {
		cols := []string{phase, metric}
		for _, in := range b.instances {
			cols = append(cols, cell(in))
		}
		cols = append(cols, rat, rounds)
		fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	}
	get := func(in *instance, key string) *result { return in.res[key] }
	opsPer := func(d time.Duration, n int) string {
		if n == 0 {
			return "-"
		}
		return ms(d / time.Duration(n))
	}
	for _, p := range b.phases() {
		if get(ours, p.key) == nil {
			continue
		}
		has := func(in *instance) bool { return get(in, p.key) != nil }
		unit := "IQ/s"
		if p.kind == "login" {
			unit = "logins/s"
		}
		rr := ratio(get(ours, p.key).rate(), get(peer, p.key).rate())
		row(p.title, unit, func(in *instance) string {
			if !has(in) {
				return "-"
			}
			return fmt.Sprintf("%.0f", get(in, p.key).rate())
		}, fmt.Sprintf("%.2f", rr), roundRatios(get(ours, p.key), get(peer, p.key)))
		for _, q := range []struct {
			name string
			q    float64
		}{{"median ms", 0.5}, {"p90 ms", 0.9}} {
			row("", q.name, func(in *instance) string {
				if !has(in) {
					return "-"
				}
				return ms(quantile(get(in, p.key).lat, q.q))
			}, fmt.Sprintf("%.2f", ratio(float64(quantile(get(peer, p.key).lat, q.q)), float64(quantile(get(ours, p.key).lat, q.q)))), "")
		}
		row("", "server CPU ms/op (prosody+component)", func(in *instance) string {
			if !has(in) {
				return "-"
			}
			r := get(in, p.key)
			if in.comp == nil {
				return opsPer(r.cpuSrv, r.n)
			}
			return fmt.Sprintf("%s (%s+%s)", opsPer(r.cpuSrv+r.cpuComp, r.n), opsPer(r.cpuSrv, r.n), opsPer(r.cpuComp, r.n))
		}, fmt.Sprintf("%.2f", ratio(float64(get(peer, p.key).cpuSrv)/float64(get(peer, p.key).n),
			float64(get(ours, p.key).cpuSrv+get(ours, p.key).cpuComp)/float64(get(ours, p.key).n))), "")
		row("", "client CPU ms/op", func(in *instance) string {
			if !has(in) {
				return "-"
			}
			return opsPer(get(in, p.key).cpuSelf, get(in, p.key).n)
		}, "", "")
	}
	row("memory", "RSS MiB (prosody+component)", func(in *instance) string {
		if in.comp == nil {
			return fmt.Sprintf("%.0f", float64(in.rssProsody)/1024)
		}
		return fmt.Sprintf("%.0f+%.0f", float64(in.rssProsody)/1024, float64(in.rssComp)/1024)
	}, "", "")
	tw.Flush()
	fmt.Fprintln(w, "(ours/peer: rate ratio; for latency and CPU rows peer/ours, so > 1 is better for ours everywhere. per round: range of the per-round rate ratios.)")

	login := ratio(ours.res["login"].rate(), peer.res["login"].rate())
	items := min(ratio(ours.res["items"].rate(), peer.res["items"].rate()), ratio(ours.res["items-w"].rate(), peer.res["items-w"].rate()))
	appendR := min(ratio(ours.res["append"].rate(), peer.res["append"].rate()), ratio(ours.res["append-w"].rate(), peer.res["append-w"].rate()))
	scale := "n/a"
	if big != nil {
		scale = fmt.Sprintf("%.2f", ratio(big.res["login"].rate(), ours.res["login"].rate()))
	}
	fmt.Fprintf(w, "targets: login >= 1.0 %s, items >= 1.0 %s, append >= 1.0 %s, login_1m_vs_1k >= 0.9 %s (items and append: the lower of sequential and x%d)\n",
		verdict(login >= 1), verdict(items >= 1), verdict(appendR >= 1), verdictScale(big, login1m(big, ours)), b.cfg.window)
	pg := "n/a"
	if in := b.byName("ours-pg"); in != nil {
		pg = fmt.Sprintf("%.2f", ratio(in.res["login"].rate(), ours.res["login"].rate()))
	}
	fmt.Fprintf(w, "RATIO login=%.2f items=%.2f append=%.2f login_1m_vs_1k=%s login_pg_vs_sqlite=%s\n", login, items, appendR, scale, pg)
}

func login1m(big, ours *instance) float64 {
	if big == nil {
		return 0
	}
	return ratio(big.res["login"].rate(), ours.res["login"].rate())
}

func verdictScale(big *instance, r float64) string {
	if big == nil {
		return "not measured (-fill 0)"
	}
	return verdict(r >= 0.9)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (b *bench) order() string {
	var names []string
	for _, in := range b.instances {
		names = append(names, in.name)
	}
	return strings.Join(names, " ") + " " + strings.Join(names, " ") + " ..."
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func prosodyVersion() string {
	b, err := os.ReadFile("/usr/lib/prosody/prosody.version")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
