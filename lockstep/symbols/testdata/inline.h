/* Header for inline.c: an inlined function from another file. */
static inline __attribute__((always_inline)) int scale(int x, int k)
{
	return x * k + (x >> 3);
}
