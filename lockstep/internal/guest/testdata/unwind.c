volatile long sink;
__attribute__((noinline)) void leaf(volatile long *p)
{
	p[0]++;
	sink = p[1];
}
static inline __attribute__((always_inline)) long inl(volatile long *b, long a)
{
	b[0] = a;
	leaf(b);
	return b[0] + 1;
}
__attribute__((noinline)) long mid(long a)
{
	volatile long buf[8];
	long r = inl(buf, a);
	return r + buf[3];
}
__attribute__((noinline)) long top(long a)
{
	long r = mid(a) * 3;
	sink = r;
	return r + 1;
}
void _start(void)
{
	sink = top(5);
	for (;;)
		;
}
