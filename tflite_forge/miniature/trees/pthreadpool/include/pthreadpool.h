/* Miniature pthreadpool (tflite-forge fixture). */
#ifndef PTHREADPOOL_H_
#define PTHREADPOOL_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pthreadpool* pthreadpool_t;
typedef void (*pthreadpool_task_1d_t)(void* context, size_t index);

/* threads_count 0 means one thread per online CPU. Returns NULL on failure. */
pthreadpool_t pthreadpool_create(size_t threads_count);
size_t pthreadpool_get_threads_count(pthreadpool_t threadpool);
/* Calls task(context, i) for every i in [0, range); a NULL pool runs on the caller. */
void pthreadpool_parallelize_1d(pthreadpool_t threadpool, pthreadpool_task_1d_t task,
                                void* context, size_t range, unsigned int flags);
void pthreadpool_destroy(pthreadpool_t threadpool);

#ifdef __cplusplus
}
#endif

#endif /* PTHREADPOOL_H_ */
