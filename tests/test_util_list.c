/*
** test_util_list.c: the intrusive list of util/list.h -- order at both
** ends, O(1) removal anywhere, removal while iterating, zeroed lists.
*/
#include <stdio.h>
#include <string.h>
#include "helpers.h"
#include "util/list.h"

typedef struct item {
  int v;
  nio_link link;
} item;

/* The values of l in order, as a string ("1 2 3"), checked both ways. */
static const char *values(const nio_list *l) {
  static char buf[128];
  char back[128];
  size_t n = 0, m = 0;
  nio_link *k;
  buf[0] = back[0] = '\0';
  for (k = l->first; k; k = k->next)
    n += (size_t)snprintf(buf + n, sizeof buf - n, n ? " %d" : "%d",
                          nio__list_item(k, item, link)->v);
  for (k = l->last; k; k = k->prev) {
    char tmp[128];
    snprintf(tmp, sizeof tmp, m ? "%d %s" : "%d%s",
             nio__list_item(k, item, link)->v, back);
    m = strlen(tmp);
    memcpy(back, tmp, m + 1);
  }
  if (strcmp(buf, back) != 0)
    th_fail("list links disagree: forward \"%s\", backward \"%s\"", buf, back);
  return buf;
}

static void list_keeps_order_at_both_ends(void **state) {
  nio_list l;
  item it[4];
  (void)state;
  memset(&l, 0, sizeof l); /* a zeroed list is empty */
  assert_true(nio__list_empty(&l));
  assert_null(nio__list_pop_front(&l));
  for (int i = 0; i < 4; i++) it[i].v = i;
  nio__list_push_back(&l, &it[1].link);
  nio__list_push_back(&l, &it[2].link);
  nio__list_push_front(&l, &it[0].link);
  nio__list_push_back(&l, &it[3].link);
  assert_string_equal(values(&l), "0 1 2 3");
  assert_ptr_equal(nio__list_item(nio__list_pop_front(&l), item, link), &it[0]);
  assert_string_equal(values(&l), "1 2 3");
}

static void list_removes_first_middle_last_and_only(void **state) {
  nio_list l = {0};
  item it[4];
  (void)state;
  for (int i = 0; i < 4; i++) {
    it[i].v = i;
    nio__list_push_back(&l, &it[i].link);
  }
  nio__list_remove(&l, &it[2].link);
  assert_string_equal(values(&l), "0 1 3");
  nio__list_remove(&l, &it[0].link);
  assert_string_equal(values(&l), "1 3");
  nio__list_remove(&l, &it[3].link);
  assert_string_equal(values(&l), "1");
  nio__list_remove(&l, &it[1].link);
  assert_true(nio__list_empty(&l));
  assert_null(l.last);
  assert_null(nio__list_item(l.first, item, link));
  /* A removed link can go in again. */
  nio__list_push_front(&l, &it[2].link);
  assert_string_equal(values(&l), "2");
}

static void list_each_survives_removing_the_current_link(void **state) {
  nio_list l = {0};
  item it[6];
  nio_link *k, *nx;
  int seen = 0;
  (void)state;
  for (int i = 0; i < 6; i++) {
    it[i].v = i;
    nio__list_push_back(&l, &it[i].link);
  }
  nio__list_each(&l, k, nx) {
    item *x = nio__list_item(k, item, link);
    seen++;
    if (x->v % 2 == 0) nio__list_remove(&l, k);
  }
  assert_int_equal(seen, 6);
  assert_string_equal(values(&l), "1 3 5");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(list_keeps_order_at_both_ends),
      cmocka_unit_test(list_removes_first_middle_last_and_only),
      cmocka_unit_test(list_each_survives_removing_the_current_link),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
