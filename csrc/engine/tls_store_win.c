/*
** tls_store_win.c: the system store on Windows: the certificates of the
** "ROOT" system store (CryptoAPI) become trust anchors of an OpenSSL
** context, as SSL_CTX_set_default_verify_paths makes the files of
** /etc/ssl/certs on Linux (tls.c). Windows has no such files: its trusted
** roots live in the registry, behind crypt32.
*/
#if defined(_WIN32) && defined(NIO_HAVE_TLS)
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <wincrypt.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "netio.h"

/* Declared here and in tls.c, its one caller: one signature on every OS. */
int nio__tls_system_store(SSL_CTX *ctx);
/* What it does, on any CryptoAPI store (the tests give it a memory store
** with the cases Wine's ROOT store does not have). */
int nio__tls_add_cert_store(SSL_CTX *ctx, HCERTSTORE h);

/* Whether a root may anchor TLS chains. Windows can restrict a root to
** some purposes (an "enhanced key usage" property set on the store entry,
** not in the certificate); OpenSSL does not see these properties, so a
** root restricted to, say, code signing is left out here rather than
** trusted for TLS. A root without the property is trusted for everything. */
static int store_trusts_for_tls(const CERT_CONTEXT *cc) {
  DWORD size = 0;
  if (!CertGetEnhancedKeyUsage(cc, CERT_FIND_PROP_ONLY_ENHKEY_USAGE_FLAG, NULL,
                               &size))
    /* No property: no restriction. Any other failure: unknown, and a root
    ** the user put in the store is trusted as Windows would by default. */
    return 1;
  CERT_ENHKEY_USAGE *u = malloc(size);
  if (u == NULL) return 1;
  int ok = 1;
  SetLastError(0);
  if (CertGetEnhancedKeyUsage(cc, CERT_FIND_PROP_ONLY_ENHKEY_USAGE_FLAG, u,
                              &size)) {
    /* An empty list is "valid for every purpose" when the last error is
    ** CRYPT_E_NOT_FOUND and "valid for none" (a disabled root) otherwise,
    ** as the function's documentation has it. */
    ok = u->cUsageIdentifier == 0 && GetLastError() == (DWORD)CRYPT_E_NOT_FOUND;
    for (DWORD i = 0; i < u->cUsageIdentifier; i++) {
      const char *oid = u->rgpszUsageIdentifier[i];
      /* Server authentication (clients verifying servers) and client
      ** authentication (servers verifying clients): the two uses of a
      ** context's store. */
      if (strcmp(oid, szOID_PKIX_KP_SERVER_AUTH) == 0 ||
          strcmp(oid, szOID_PKIX_KP_CLIENT_AUTH) == 0)
        ok = 1;
    }
  }
  free(u);
  return ok;
}

/* Add the certificates of store h to ctx's X509_STORE; see below. */
int nio__tls_add_cert_store(SSL_CTX *ctx, HCERTSTORE h) {
  X509_STORE *st = SSL_CTX_get_cert_store(ctx);
  FILETIME now;
  GetSystemTimeAsFileTime(&now);
  int rc = 0;
  const CERT_CONTEXT *cc = NULL;
  while ((cc = CertEnumCertificatesInStore(h, cc)) != NULL) {
    if ((cc->dwCertEncodingType & X509_ASN_ENCODING) == 0) continue;
    if (CompareFileTime(&now, &cc->pCertInfo->NotBefore) < 0 ||
        CompareFileTime(&now, &cc->pCertInfo->NotAfter) > 0)
      continue;
    if (!store_trusts_for_tls(cc)) continue;
    const unsigned char *der = cc->pbCertEncoded;
    X509 *x = d2i_X509(NULL, &der, (long)cc->cbCertEncoded);
    if (x == NULL) continue;
    int added = X509_STORE_add_cert(st, x);
    X509_free(x);
    if (added != 1) {
      rc = NIO_ENOMEM;
      /* CertEnumCertificatesInStore frees cc when given it again; stopping
      ** early, we free it ourselves. */
      CertFreeCertificateContext(cc);
      break;
    }
  }
  /* Skipped certificates leave parse errors on the thread's queue; they
  ** must not be reported as the reason of a later, unrelated failure. */
  ERR_clear_error();
  return rc;
}

/* Add the certificates of the ROOT system store to ctx's X509_STORE.
** Returns 0 when the store could be read, even if it had no certificate
** (then verification fails later, naming the missing issuer, as it does on
** a Linux without ca-certificates); NIO_ENOMEM when OpenSSL could not
** take a certificate; the translated error when the store cannot be
** opened. A certificate OpenSSL cannot parse, one outside its validity
** period (an expired root would shadow its renewed twin, which has the
** same subject), or one restricted to other purposes is skipped. Calling
** it twice is harmless: OpenSSL ignores a certificate it already holds. */
int nio__tls_system_store(SSL_CTX *ctx) {
  /* The current user's view of ROOT: the machine's roots and the user's,
  ** what SChannel trusts for this process. */
  HCERTSTORE h = CertOpenSystemStoreW(0, L"ROOT");
  if (h == NULL) return nio_translate_sys_error((int)GetLastError());
  int rc = nio__tls_add_cert_store(ctx, h);
  CertCloseStore(h, 0);
  return rc;
}
#endif
