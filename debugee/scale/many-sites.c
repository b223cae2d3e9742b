/* Many sites: 100,000 distinct call sites of malloc (100 functions of 1,000 each, written by the
 * macros below), each losing one 16-byte block: 100,000 loss records.
 * Figures: definitely lost 1,600,000 bytes in 100,000 blocks.
 * Usage: many-sites */
#include <stdlib.h>

static void *volatile sink;

#define SITE sink = malloc(16);
#define SITES10 SITE SITE SITE SITE SITE SITE SITE SITE SITE SITE
#define SITES100 SITES10 SITES10 SITES10 SITES10 SITES10 SITES10 SITES10 SITES10 SITES10 SITES10
#define SITES1000 SITES100 SITES100 SITES100 SITES100 SITES100 SITES100 SITES100 SITES100 SITES100 SITES100
#define FN(i) __attribute__((noinline)) static void sites_##i(void) { SITES1000 }
#define FN10(i) FN(i##0) FN(i##1) FN(i##2) FN(i##3) FN(i##4) FN(i##5) FN(i##6) FN(i##7) FN(i##8) FN(i##9)
#define CALL(i) sites_##i();
#define CALL10(i) CALL(i##0) CALL(i##1) CALL(i##2) CALL(i##3) CALL(i##4) CALL(i##5) CALL(i##6) CALL(i##7) CALL(i##8) CALL(i##9)

FN10(1) FN10(2) FN10(3) FN10(4) FN10(5) FN10(6) FN10(7) FN10(8) FN10(9) FN10(10)

int main(void)
{
    CALL10(1) CALL10(2) CALL10(3) CALL10(4) CALL10(5) CALL10(6) CALL10(7) CALL10(8) CALL10(9) CALL10(10)
    sink = 0;
    return 0;
}
