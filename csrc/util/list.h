/*
** list.h: the one intrusive doubly-linked list of netio. A struct that goes
** in a list embeds an nio_link; the list is an nio_list (first, last).
** Both are valid zeroed, so a calloc'd owner needs no init call. Insertion
** at either end and removal of any element are O(1); nothing allocates.
**
** The list does not know whether a link is in it: the owner keeps that
** (a pointer to the list, a flag), as the callers did before. A link may
** be in one list at a time; removing one that is not in l is undefined.
*/
#ifndef NIO_LIST_H
#define NIO_LIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct nio_link {
  struct nio_link *prev, *next; /* NULL at the ends */
} nio_link;

typedef struct nio_list {
  nio_link *first, *last; /* both NULL when empty */
} nio_list;

/* The struct of type that embeds link p as member, or NULL for NULL (p
** is evaluated once: it may be a call). */
#define nio__list_item(p, type, member)                                        \
  ((type *)nio__list_item_((p), offsetof(type, member)))
static inline void *nio__list_item_(const nio_link *p, size_t off) {
  return p ? (void *)((char *)(uintptr_t)p - off) : NULL;
}

/* for (each link k of l, in order; k may be removed in the body). */
#define nio__list_each(l, k, nx)                                               \
  for ((k) = (l)->first; (k) != NULL && ((nx) = (k)->next, 1); (k) = (nx))

static inline int nio__list_empty(const nio_list *l) {
  return l->first == NULL;
}

static inline void nio__list_push_back(nio_list *l, nio_link *n) {
  n->next = NULL;
  n->prev = l->last;
  if (l->last)
    l->last->next = n;
  else
    l->first = n;
  l->last = n;
}

static inline void nio__list_push_front(nio_list *l, nio_link *n) {
  n->prev = NULL;
  n->next = l->first;
  if (l->first)
    l->first->prev = n;
  else
    l->last = n;
  l->first = n;
}

static inline void nio__list_remove(nio_list *l, nio_link *n) {
  if (n->prev)
    n->prev->next = n->next;
  else
    l->first = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    l->last = n->prev;
  n->prev = n->next = NULL;
}

/* Remove and return the first link, or NULL. */
static inline nio_link *nio__list_pop_front(nio_list *l) {
  nio_link *n = l->first;
  if (n) nio__list_remove(l, n);
  return n;
}

#endif /* NIO_LIST_H */
