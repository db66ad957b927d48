/*
** proc_cpu.h: CPU time read from /proc, for the load generators
** (loadgen.c, outside_reader.c) -- the busy ticks of one CPU and the
** user+system ticks of the measured processes, sampled around a run.
*/
#ifndef NETIO_BENCH_PROC_CPU_H
#define NETIO_BENCH_PROC_CPU_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Busy ticks of CPU `cpu` from /proc/stat (0 when cpu < 0). */
static inline uint64_t pc_cpu_ticks(int cpu) {
  char line[512], name[16];
  uint64_t busy = 0;
  FILE *f;
  if (cpu < 0 || !(f = fopen("/proc/stat", "r"))) return 0;
  snprintf(name, sizeof name, "cpu%d ", cpu);
  while (fgets(line, sizeof line, f)) {
    unsigned long long v[8] = {0};
    if (strncmp(line, name, strlen(name)) != 0) continue;
    sscanf(line + strlen(name), "%llu %llu %llu %llu %llu %llu %llu %llu",
           &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    /* user nice system idle iowait irq softirq steal: user+nice+system+
    ** irq+softirq. Not iowait (an io_uring wait counts as iowait, yet the
    ** CPU is idle) nor steal (the hypervisor ran someone else). */
    busy = v[0] + v[1] + v[2] + v[5] + v[6];
    break;
  }
  fclose(f);
  return busy;
}

/* utime + stime ticks of the processes pids[0..n) (every thread included). */
static inline uint64_t pc_pid_ticks(const int *pids, int n) {
  uint64_t sum = 0;
  for (int i = 0; i < n; i++) {
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
    if (!(f = fopen(path, "r"))) continue;
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    /* comm may hold spaces: fields count from the last ')' (field 2). */
    if (!(p = strrchr(buf, ')'))) continue;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) == 2)
      sum += ut + st;
  }
  return sum;
}

#endif
