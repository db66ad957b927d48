/*
** test_port_select.c: choosing the backend -- NETIO_BACKEND, names given
** by the caller, unknown names, the fallback to epoll when io_uring fails.
*/
#include <stdlib.h>
#include <string.h>
#include "helpers.h"

/* The tests change the environment; each restores what it found. */
typedef struct saved_env {
  char *backend;
  char *fail;
} saved_env;

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static void env_save(saved_env *e) {
  e->backend = dup_or_null(getenv("NETIO_BACKEND"));
  e->fail = dup_or_null(getenv("NETIO_TEST_URING_FAIL"));
}

static void env_put(const char *name, const char *value) {
  if (value)
    th_setenv(name, value);
  else
    th_setenv(name, NULL);
}

static void env_restore(saved_env *e) {
  env_put("NETIO_BACKEND", e->backend);
  env_put("NETIO_TEST_URING_FAIL", e->fail);
  free(e->backend);
  free(e->fail);
}

static void backend_env_chooses_the_port(void **state) {
  nio_port *p = NULL;
  const char *want = th_backend();
  (void)state;
  if (want[0] == '\0') skip();
  assert_int_equal(nio__port_open(&p, NULL), 0);
  if (strcmp(nio__port_backend(p), want) != 0)
    th_fail("expected NETIO_BACKEND=%s to open \"%s\", got \"%s\"", want, want,
            nio__port_backend(p));
  nio__port_close(p);
  assert_int_equal(nio__port_open(&p, ""), 0);
  if (strcmp(nio__port_backend(p), want) != 0)
    th_fail("expected \"\" to mean the NETIO_BACKEND choice \"%s\", got \"%s\"",
            want, nio__port_backend(p));
  nio__port_close(p);
}

static void named_backend_wins_over_the_env(void **state) {
  nio_port *p = NULL;
  (void)state;
  assert_int_equal(nio__port_open(&p, "epoll"), 0);
  if (strcmp(nio__port_backend(p), "epoll") != 0)
    th_fail("expected \"epoll\" when asked by name, got \"%s\"",
            nio__port_backend(p));
  nio__port_close(p);
}

static void unknown_backend_name_is_einval(void **state) {
  nio_port *p = (nio_port *)&p;
  saved_env e;
  int r;
  (void)state;
  r = nio__port_open(&p, "kqueue");
  if (r != NIO_EINVAL)
    th_fail("expected EINVAL for backend \"kqueue\", got %s", nio_err_name(r));
  assert_null(p);
  env_save(&e);
  th_setenv("NETIO_BACKEND", "bogus");
  r = nio__port_open(&p, NULL);
  env_restore(&e);
  if (r != NIO_EINVAL)
    th_fail("expected EINVAL for NETIO_BACKEND=bogus, got %s", nio_err_name(r));
  assert_null(p);
}

static void default_falls_back_to_epoll_when_uring_fails(void **state) {
  nio_port *p = NULL;
  saved_env e;
  int r;
  (void)state;
  env_save(&e);
  th_setenv("NETIO_BACKEND", NULL);
  th_setenv("NETIO_TEST_URING_FAIL", "1");
  r = nio__port_open(&p, NULL);
  env_restore(&e);
  if (r != 0)
    th_fail("expected the default open to fall back, got %s", nio_err_name(r));
  if (strcmp(nio__port_backend(p), "epoll") != 0)
    th_fail("expected \"epoll\" when io_uring setup fails, got \"%s\"",
            nio__port_backend(p));
  nio__port_close(p);
}

static void uring_by_name_fails_when_its_setup_fails(void **state) {
  nio_port *p = NULL;
  saved_env e;
  int r;
  (void)state;
  env_save(&e);
  th_setenv("NETIO_TEST_URING_FAIL", "1");
  r = nio__port_open(&p, "uring");
  env_restore(&e);
  if (r == 0) {
    nio__port_close(p);
    th_fail("expected asking for \"uring\" by name to fail when its setup "
            "fails, not to fall back");
  }
  assert_null(p);
}

static void default_prefers_uring_when_available(void **state) {
  nio_port *p = NULL;
  saved_env e;
  int r, have_uring = nio__port_available("uring");
  (void)state;
  env_save(&e);
  th_setenv("NETIO_BACKEND", NULL);
  th_setenv("NETIO_TEST_URING_FAIL", NULL);
  r = nio__port_open(&p, NULL);
  env_restore(&e);
  assert_int_equal(r, 0);
  if (strcmp(nio__port_backend(p), have_uring ? "uring" : "epoll") != 0)
    th_fail("expected the default to be \"%s\", got \"%s\"",
            have_uring ? "uring" : "epoll", nio__port_backend(p));
  nio__port_close(p);
}

static void port_available_knows_the_names(void **state) {
  (void)state;
  if (!nio__port_available("epoll"))
    th_fail("expected epoll to be available on Linux");
  if (nio__port_available("kqueue"))
    th_fail("expected \"kqueue\" to be unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(backend_env_chooses_the_port),
      cmocka_unit_test(named_backend_wins_over_the_env),
      cmocka_unit_test(unknown_backend_name_is_einval),
      cmocka_unit_test(default_falls_back_to_epoll_when_uring_fails),
      cmocka_unit_test(uring_by_name_fails_when_its_setup_fails),
      cmocka_unit_test(default_prefers_uring_when_available),
      cmocka_unit_test(port_available_knows_the_names),
  };
  th_init(0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
