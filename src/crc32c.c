/*
 * crc32c.c: CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the
 * checksum of every payload on the wire.
 *
 * The SSE4.2 crc32 instruction does 8 bytes per step, several GiB/s, so the
 * check costs little next to the copy; other CPUs use a table.
 * crc32c_update(0, "123456789", 9) == 0xe3069283.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jq.h"

static uint32_t	crc_table[256];
static int	crc_mode;	/* 0 unknown, 1 table, 2 hardware */

/* Fill the byte-at-a-time table. */
static void
crc_table_init(void)
{
	uint32_t	 c;
	int		 i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78U : c >> 1;
		crc_table[i] = c;
	}
}

/* Update an inverted CRC with the table, a byte at a time. */
static uint32_t
crc_soft(uint32_t c, const unsigned char *p, size_t len)
{
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
/* Update an inverted CRC with the SSE4.2 instruction. */
__attribute__((target("sse4.2")))
static uint32_t
crc_hard(uint32_t c, const unsigned char *p, size_t len)
{
	uint64_t	 c64 = c, w;

	for (; len > 0 && ((uintptr_t)p & 7) != 0; len--)
		c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&w, p, 8);
		c64 = __builtin_ia32_crc32di(c64, w);
	}
	for (; len > 0; len--)
		c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
	return (uint32_t)c64;
}
#endif

/* Continue a CRC-32C over len bytes; start with crc 0. */
uint32_t
crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	uint32_t		 c = ~crc;

	if (crc_mode == 0) {
		crc_table_init();
		crc_mode = 1;
#if defined(__x86_64__)
		__builtin_cpu_init();
		if (__builtin_cpu_supports("sse4.2"))
			crc_mode = 2;
#endif
	}
#if defined(__x86_64__)
	if (crc_mode == 2)
		return ~crc_hard(c, p, len);
#endif
	return ~crc_soft(c, p, len);
}
