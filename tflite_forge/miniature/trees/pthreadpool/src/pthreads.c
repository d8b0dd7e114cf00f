/* Miniature pthreadpool: each parallelize call forks up to threads_count
 * workers over contiguous slices of the range and joins them. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "pthreadpool.h"

struct pthreadpool {
  size_t threads_count;
};

struct slice {
  pthreadpool_task_1d_t task;
  void* context;
  size_t begin;
  size_t end;
};

static void* run_slice(void* arg) {
  const struct slice* s = (const struct slice*) arg;
  for (size_t i = s->begin; i < s->end; i++) {
    s->task(s->context, i);
  }
  return NULL;
}

pthreadpool_t pthreadpool_create(size_t threads_count) {
  if (threads_count == 0) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    threads_count = online > 0 ? (size_t) online : 1;
  }
  pthreadpool_t pool = malloc(sizeof *pool);
  if (pool != NULL) {
    pool->threads_count = threads_count;
  }
  return pool;
}

size_t pthreadpool_get_threads_count(pthreadpool_t threadpool) {
  return threadpool == NULL ? 1 : threadpool->threads_count;
}

void pthreadpool_parallelize_1d(pthreadpool_t threadpool, pthreadpool_task_1d_t task,
                                void* context, size_t range, unsigned int flags) {
  (void) flags;
  size_t workers = pthreadpool_get_threads_count(threadpool);
  if (workers > range) {
    workers = range;
  }
  if (workers <= 1) {
    struct slice all = {task, context, 0, range};
    run_slice(&all);
    return;
  }
  struct slice* slices = calloc(workers, sizeof *slices);
  pthread_t* threads = calloc(workers, sizeof *threads);
  int* started = calloc(workers, sizeof *started);
  const size_t step = (range + workers - 1) / workers;
  for (size_t w = 0; w < workers && slices && threads && started; w++) {
    size_t begin = w * step;
    size_t end = begin + step < range ? begin + step : range;
    slices[w] = (struct slice){task, context, begin, end};
    started[w] = w > 0 && pthread_create(&threads[w], NULL, run_slice, &slices[w]) == 0;
  }
  if (slices == NULL || threads == NULL || started == NULL) {
    struct slice all = {task, context, 0, range};
    run_slice(&all);
  } else {
    run_slice(&slices[0]);
    for (size_t w = 1; w < workers; w++) {
      if (started[w]) {
        pthread_join(threads[w], NULL);
      } else {
        run_slice(&slices[w]); /* thread creation failed: do the slice here */
      }
    }
  }
  free(slices);
  free(threads);
  free(started);
}

void pthreadpool_destroy(pthreadpool_t threadpool) {
  free(threadpool);
}
