/*
 * plat.c (s390x): serial output on the SCLP ASCII console (QEMU's
 * sclpconsole, which -serial connects on s390-ccw-virtio) and exit by
 * loading a disabled-wait PSW: address 0xfff is QEMU's "quiesce" (shutdown,
 * status 0); any other address is a guest panic (QEMU's -action panic).
 *
 * SERVC runs synchronously under QEMU; the service-signal interrupt it
 * raises stays pending (external interrupts are off), so no wait is needed.
 */
#include "lib.h"

#define SCLP_CMD_WRITE_EVENT_MASK 0x00780005U
#define SCLP_CMD_WRITE_EVENT_DATA 0x00760005U
#define SCLP_EVENT_MASK_MSG_ASCII 0x00000040U
#define SCLP_EVENT_ASCII_CONSOLE_DATA 0x1a
#define LINE_MAX 128

/* sccb_header is the SCCB header every SCLP command starts with. */
struct sccb_header {
	uint16_t length;
	uint8_t function_code;
	uint8_t control_mask[3];
	uint16_t response_code;
} __attribute__((packed));

/* sccb_mask is the SCCB of WRITE EVENT MASK (4-byte masks). */
struct sccb_mask {
	struct sccb_header h;
	uint16_t reserved;
	uint16_t mask_length;
	uint32_t cp_receive_mask;
	uint32_t cp_send_mask;
	uint32_t send_mask;
	uint32_t receive_mask;
} __attribute__((packed));

/* sccb_write is the SCCB of WRITE EVENT DATA with one ASCII event. */
struct sccb_write {
	struct sccb_header h;
	uint16_t ebh_length;
	uint8_t ebh_type;
	uint8_t ebh_flags;
	uint16_t ebh_reserved;
	char data[LINE_MAX];
} __attribute__((packed));

/* sclp_sccb is the one SCCB (page aligned: an SCCB must not cross a page). */
static union {
	struct sccb_mask mask;
	struct sccb_write write;
	uint8_t page[4096];
} sclp_sccb __attribute__((aligned(4096)));

/* sclp_line buffers a line; sclp_ready is set once the mask is written. */
static char sclp_line[LINE_MAX];
static int sclp_len, sclp_ready;

/* sclp_call runs one SCLP command on sclp_sccb. */
static NOINLINE void sclp_call(uint32_t cmd)
{
	uint64_t c = cmd;
	void *p = &sclp_sccb;

	__asm__ volatile(".insn rre,0xb2200000,%0,%1"
			 : : "d"(c), "a"(p) : "cc", "memory");
}

/* sclp_flush writes the buffered line to the console. */
static NOINLINE void sclp_flush(void)
{
	int i;

	if (!sclp_ready) {
		memset(&sclp_sccb, 0, sizeof(struct sccb_mask));
		sclp_sccb.mask.h.length = sizeof(struct sccb_mask);
		sclp_sccb.mask.mask_length = 4;
		sclp_sccb.mask.cp_receive_mask = SCLP_EVENT_MASK_MSG_ASCII;
		sclp_sccb.mask.cp_send_mask = SCLP_EVENT_MASK_MSG_ASCII;
		sclp_call(SCLP_CMD_WRITE_EVENT_MASK);
		sclp_ready = 1;
	}
	memset(&sclp_sccb, 0, sizeof(struct sccb_write));
	sclp_sccb.write.h.length = sizeof(struct sccb_write) - LINE_MAX + sclp_len;
	sclp_sccb.write.ebh_length = 6 + sclp_len;
	sclp_sccb.write.ebh_type = SCLP_EVENT_ASCII_CONSOLE_DATA;
	for (i = 0; i < sclp_len; i++)
		sclp_sccb.write.data[i] = sclp_line[i];
	sclp_call(SCLP_CMD_WRITE_EVENT_DATA);
	sclp_len = 0;
}

/* serial_putc buffers one byte and writes the line at '\n' (or when full). */
void serial_putc(char c)
{
	sclp_line[sclp_len++] = c;
	if (c == '\n' || sclp_len == LINE_MAX)
		sclp_flush();
}

/* exit_psw is the disabled-wait PSW qemu_exit loads: wait, EA, BA. */
static struct {
	uint64_t mask, addr;
} exit_psw __attribute__((aligned(8))) = { 0x0002000180000000UL, 0xfff };

/* qemu_exit flushes the console and loads a disabled-wait PSW. */
void qemu_exit(uint32_t value)
{
	if (value) {
		serial_puts("exit:");
		serial_putkv("value", value);
		serial_putc('\n');
		exit_psw.addr = (uint64_t)value << 12;
	}
	if (sclp_len)
		sclp_flush();
	__asm__ volatile("lpswe %0" : : "Q"(exit_psw) : "memory");
	for (;;)
		;
}
