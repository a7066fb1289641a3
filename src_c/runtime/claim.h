// runtime/claim.h - a claim board: a team of threads runs a sequence of
// stages, each cut into at most NNC_CLAIM_MAX_ITEMS items, with no barrier.
//
// Every thread walks the stages in order.  In a stage it claims items (a bit
// each: its own first, then any nobody has claimed yet), runs each item it
// claimed and counts it done; then it waits until the stage's every item is
// done (a spin, then yields: the thread it waits for may be descheduled on
// this very core).  So a descheduled thread never holds back work it has not
// started.  A thread that waits longer than the stall threshold for an item
// somebody holds becomes the lead: the others stop after the item they hold
// and the lead runs the rest alone.  After the team's region,
// nnc_claim_stalled gives the stall guard's verdict (nnc_stall_note).
//
// Memory: nnc_claim_board_bytes(stages), zeroed by nnc_claim_board_init, one
// cache line for the team and one per stage (no false sharing between them).
// Ordering: claims are relaxed (the bit alone decides who runs an item); an
// item's "done" is a release, the wait's read an acquire, so a thread past
// the wait sees every write of the stage's items.
#ifndef NNC_RUNTIME_CLAIM_H
#define NNC_RUNTIME_CLAIM_H

#include "nnc_internal.h"
#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#endif

#define NNC_CLAIM_MAX_ITEMS 64  // items per stage: a bit each in one word
#define NNC_CLAIM_NO_LEAD 0     // the lead field while the whole team works
// The waits between two looks at the lead and the clock; after this many
// spins a waiting thread yields its core at every spin.
#define NNC_CLAIM_LOOK_MASK 255u
#define NNC_CLAIM_YIELD_AFTER 2000u

// One stage: the items claimed (bit i: item i) and the number done.
typedef struct {
    unsigned long long claimed;
    int done;
    char pad[52];
} nnc_claim_stage;

// The team's line: lead is NNC_CLAIM_NO_LEAD or 1 + the slot of the thread
// that finishes alone; finish_ns the time the first thread got through the
// last stage (0: none yet).
typedef struct {
    unsigned long long finish_ns;
    int lead;
    char pad[52];
} nnc_claim_team;

typedef struct {
    nnc_claim_team team;
    nnc_claim_stage stage[];
} nnc_claim_board;

static inline nnc_ssize nnc_claim_board_bytes(nnc_ssize stages)
{
    nnc_ssize bytes;
    if (stages < 0 || !nnc_mul_ok(stages + 1, (nnc_ssize)sizeof(nnc_claim_stage), &bytes)) return -1;
    return bytes;
}

static inline void nnc_claim_board_init(nnc_claim_board *b, nnc_ssize stages)
{
    memset(b, 0, (size_t)nnc_claim_board_bytes(stages));
}

// True when another thread (not slot `me`) has become the lead: the caller
// stops (it holds no item at this point).
NNC_INLINE int nnc_claim_other_leads(nnc_claim_board *b, int me)
{
    const int lead = __atomic_load_n(&b->team.lead, __ATOMIC_RELAXED);
    return lead != NNC_CLAIM_NO_LEAD && lead != me + 1;
}

// Claims item `item` of stage s: true if this thread got it (it then runs the
// item and calls nnc_claim_done), false if somebody had it already.
NNC_INLINE int nnc_claim_item(nnc_claim_stage *s, int item)
{
    const unsigned long long bit = 1ull << item;
    return !(__atomic_load_n(&s->claimed, __ATOMIC_RELAXED) & bit) &&
           !(__atomic_fetch_or(&s->claimed, bit, __ATOMIC_RELAXED) & bit);
}

NNC_INLINE void nnc_claim_done(nnc_claim_stage *s) { __atomic_fetch_add(&s->done, 1, __ATOMIC_RELEASE); }

// One step of a busy wait: pause, and after a while give the core away.
NNC_INLINE void nnc_claim_spin(unsigned spins)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
#if defined(__unix__) || defined(__APPLE__)
    if (spins > NNC_CLAIM_YIELD_AFTER) sched_yield();
#else
    (void)spins;
#endif
}

// Waits until the `items` items of stage s are done: true then; false when
// another thread leads (the caller stops).  A wait longer than stall_ns
// (0: never) makes this thread (slot me) the lead unless there is one.
NNC_INLINE int nnc_claim_wait(nnc_claim_board *b, nnc_claim_stage *s, int items, int me, long long stall_ns)
{
    long long t0 = 0;
    for (unsigned spins = 0; __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) < items; ++spins) {
        nnc_claim_spin(spins);
        if ((spins & NNC_CLAIM_LOOK_MASK) != NNC_CLAIM_LOOK_MASK) continue;
        const int lead = __atomic_load_n(&b->team.lead, __ATOMIC_RELAXED);
        if (lead != NNC_CLAIM_NO_LEAD && lead != me + 1) return 0;  // nothing claimed here: the lead finishes
        const long long now = nnc_now_ns();
        if (!t0) t0 = now;
        else if (stall_ns > 0 && now - t0 > stall_ns && lead == NNC_CLAIM_NO_LEAD) {
            int none = NNC_CLAIM_NO_LEAD;
            __atomic_compare_exchange_n(&b->team.lead, &none, me + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        }
    }
    return 1;
}

// A thread through the last stage: the first one records the time.
NNC_INLINE void nnc_claim_finish(nnc_claim_board *b)
{
    unsigned long long none = 0;
    __atomic_compare_exchange_n(&b->team.finish_ns, &none, (unsigned long long)nnc_now_ns(), 0,
                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

// After the region: a stall if a thread became the lead, or if the region's
// join waited longer than stall_ns for a partner after the first thread was
// through (a partner descheduled at the end).
static inline int nnc_claim_stalled(const nnc_claim_board *b, long long stall_ns)
{
    return b->team.lead != NNC_CLAIM_NO_LEAD ||
           (b->team.finish_ns && nnc_now_ns() - (long long)b->team.finish_ns > stall_ns);
}

#endif
