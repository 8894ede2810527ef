/*
 * arch.h (s390x): the SCLP console and the CPU model word deep.c mixes in.
 * Included by ../lib.h.
 */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

/*
 * arch_feature_word reads the CPU id with STIDP: its machine type field
 * (bits 16-31 of the low word) differs between -cpu models. STIDP stores
 * to memory; the lg right after it is the first instruction whose
 * registers differ.
 */
ALWAYS_INLINE uint64_t arch_feature_word(void)
{
	uint64_t v, id;

	__asm__ volatile("stidp %1\n\tlg %0, %1" : "=d"(v), "=Q"(id));
	return v;
}

#endif
