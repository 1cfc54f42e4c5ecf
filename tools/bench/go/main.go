// Command gobench holds the Go counterparts of the C benchmarks in ../c.
//
// Usage: gobench CASE [SIZE...]
//
// Each case prints ONE line of JSON on stdout with the same keys as its C
// twin, e.g. {"case":"create_join","n":10000,"ns_per_op":321.5,"ok":true},
// and exits 1 with "ok":false if its self-check fails.  Standard library
// only; goroutines stand in for threads, channels and sync for the pthread
// primitives.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// caseFunc runs one benchmark.  args are the positional size arguments.
type caseFunc func(j *jsonLine, args []string) bool

var cases = map[string]caseFunc{}

// register is called from each case file's init().
func register(name string, f caseFunc) { cases[name] = f }

// jsonLine accumulates one JSON object, keeping the keys in insertion order.
type jsonLine struct {
	sb strings.Builder
}

func newJSON(name string) *jsonLine {
	j := &jsonLine{}
	j.sb.WriteString(`{"case":` + strconv.Quote(name))
	return j
}

func (j *jsonLine) Int(k string, v int64) { fmt.Fprintf(&j.sb, ",%q:%d", k, v) }
func (j *jsonLine) Dbl(k string, v float64) {
	fmt.Fprintf(&j.sb, ",%q:%.3f", k, v)
}
func (j *jsonLine) Str(k, v string) { fmt.Fprintf(&j.sb, ",%q:%s", k, strconv.Quote(v)) }

var printOnce sync.Mutex

// finish prints the line with "ok" and exits (0 if ok, 1 otherwise).
func (j *jsonLine) finish(ok bool) {
	printOnce.Lock() // never unlocked: the process exits
	fmt.Fprintf(&j.sb, `,"ok":%t}`+"\n", ok)
	os.Stdout.WriteString(j.sb.String())
	if ok {
		os.Exit(0)
	}
	os.Exit(1)
}

var caseName = "?"

// fail prints {"case":...,"error":...,"ok":false} and exits 1.  Safe from
// any goroutine.
func fail(format string, a ...interface{}) {
	j := newJSON(caseName)
	j.Str("error", fmt.Sprintf(format, a...))
	j.finish(false)
}

// argInt returns args[i] as a positive integer, or def when absent.
func argInt(args []string, i int, def int64) int64 {
	if len(args) <= i {
		return def
	}
	v, err := strconv.ParseInt(args[i], 10, 64)
	if err != nil || v <= 0 {
		fail("bad argument %d: %q (want a positive integer)", i+1, args[i])
	}
	return v
}

// statusField returns a numeric field of /proc/self/status ("VmRSS:" in kB,
// "Threads:"), or -1.
func statusField(field string) int64 { return statusFileField("/proc/self/status", field) }

// pidStatusField is statusField for /proc/PID/status.
func pidStatusField(pid int64, field string) int64 {
	return statusFileField("/proc/"+strconv.FormatInt(pid, 10)+"/status", field)
}

func statusFileField(path, field string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field) {
			v, err := strconv.ParseInt(strings.Fields(line[len(field):])[0], 10, 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}

func nsSince(t time.Time) float64 { return float64(time.Since(t).Nanoseconds()) }

func main() {
	if len(os.Args) < 2 || cases[os.Args[1]] == nil {
		names := make([]string, 0, len(cases))
		for n := range cases {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: gobench CASE [SIZE...]\ncases: %s\n",
			strings.Join(names, " "))
		os.Exit(2)
	}
	caseName = os.Args[1]
	j := newJSON(caseName)
	ok := cases[caseName](j, os.Args[2:])
	j.finish(ok)
}
