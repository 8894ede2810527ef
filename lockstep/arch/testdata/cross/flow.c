/* Functions with known argument liveness and control flow, built by
   cross_test.go for each architecture with the Debian cross compilers.
   LIVE(...) in the comment before each function is what LiveArgs must
   answer: the indexes of the argument registers the function may read;
   with DEAD(...) only the registers listed in both are checked. */
#define N __attribute__((noipa, used))

volatile long sink;
long table[16];

/* LIVE() */
N long f_none(void) { return 42; }

/* LIVE(0) */
N long f_first(long a) { return a * 7 + 1; }

/* LIVE(1) */
N long f_second(long a, long b) { (void)a; return b * 5 + 3; }

/* LIVE(0,2) */
N long f_three(long a, long b, long c) { (void)b; return a ^ (c << 2); }

/* LIVE(0,1,2) */
N long f_branch(long a, long b, long c) { if (a > 10) return b + 1; return c - 1; }

/* LIVE(0,1) */
N long f_loop(long n, long *p) { long s = 0; for (long i = 0; i < n; i++) s += p[i]; return s; }

/* LIVE(4) */
N long f_fifth(long a, long b, long c, long d, long e) { (void)a; (void)b; (void)c; (void)d; return e + 9; }

/* LIVE(0,1) */
N long ext(long x, long y) { sink = x; return x - y; }

/* LIVE(0) */
N long f_call(long a) { return ext(a, 0) + 1; }

/* LIVE(1) */
N long f_tail(long a, long b) { (void)a; return ext(b, 3); }

/* LIVE(0) */
N long f_store(long a) { table[3] = a; sink = 1; return 0; }

/* LIVE(0) DEAD(1) (the callee is unknown: the rest may be live) */
N long f_indirect(long (*fn)(long, long)) { return fn(1, 2) + 1; }

N void nr(void) __attribute__((noreturn));
N void nr(void) { for (;;) sink++; }

/* LIVE(0) */
N void f_noreturn(long a) { sink = a; nr(); }

/* LIVE(0,1) */
N long f_deep(long a, long b) { return f_call(a) + f_second(0, b) + f_tail(0, a); }

N void _start(void) {
	sink = f_none() + f_first(1) + f_second(1, 2) + f_three(1, 2, 3) + f_branch(1, 2, 3) +
	       f_loop(2, table) + f_fifth(1, 2, 3, 4, 5) + f_call(4) + f_tail(1, 2) + f_store(5) +
	       f_indirect(ext) + f_deep(1, 2);
	f_noreturn(3);
}
