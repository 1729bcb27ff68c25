/* sqlite_gather_vfs.c - the writer connection's file system: SQLite's own, but a commit reaches
 * the write-ahead log in one write, and a checkpoint's run of pages the database in one.
 *
 * SQLite appends each page of a commit to the WAL as two writes, a 24-byte frame header and
 * the page, then syncs: a commit of eight pages made sixteen pwrite calls, and their kernel
 * work (one buffered write each, per page touched twice) was a third of the writer's time in
 * the commit under HTTP load. A checkpoint then copies pages into the database file one write
 * each, in page order, most of them new pages at its end. This VFS wraps the default one and,
 * for the WAL and the main database file, gathers writes that continue one another in a
 * buffer, written out in one call before anything that must see them: a sync, a read, a size
 * question or change, a write elsewhere, a file control, a lock or barrier on the shared
 * WAL index (a checkpoint tells readers that pages are in the database file that way), and
 * closing. Syncing, and so durability, is unchanged: the buffer always reaches the file
 * before the sync that makes a commit or a checkpoint durable. Every other file (journals,
 * temporary files), and every other call, goes straight to the wrapped VFS. */
#include "store/sqlite_internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Bytes gathered at most before they are written: the unix VFS writes at most 128 KiB - 1 in
 * one call (its seekAndWrite keeps 17 bits of the length), and 24 frames of 4 KiB pages hold
 * a commit of an ordinary batch. */
#define GATHER_MAX (96 * 1024)

typedef struct gather_file {
    sqlite3_file base; /* pMethods: gather_methods */
    sqlite3_file *real; /* the wrapped VFS's file, in the same allocation after this struct */
    bool gather;        /* the WAL or the main database: consecutive writes are gathered */
    char *buf;          /* GATHER_MAX bytes once used; LEN gathered, for the file from AT on */
    size_t len;
    sqlite3_int64 at;
    int kept_error; /* a failed write no call could report yet, for the next one */
} gather_file_t;

static sqlite3_vfs *wrapped; /* the default VFS */
static sqlite3_vfs gather_vfs;

/* Write what is gathered: SQLITE_OK or the wrapped VFS's error (the bytes are then dropped,
 * and SQLite rolls back the transaction or abandons the checkpoint that wrote them). An error
 * kept from a call that could not return one (gather_shm_barrier) is returned first. */
static int spill(gather_file_t *f)
{
    if (f->kept_error != SQLITE_OK) {
        int rc = f->kept_error;
        f->kept_error = SQLITE_OK;
        f->len = 0;
        return rc;
    }
    if (f->len == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
    f->len = 0;
    return rc;
}

static int gather_close(sqlite3_file *file)
{
    gather_file_t *f = (gather_file_t *)file;
    int rc = spill(f);
    int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int gather_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
    gather_file_t *f = (gather_file_t *)file;
    int rc = spill(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int gather_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
    gather_file_t *f = (gather_file_t *)file;
    if (!f->gather)
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    size_t n = (size_t)amt;
    if (f->len > 0 && (off != f->at + (sqlite3_int64)f->len || f->len + n > GATHER_MAX)) {
        int rc = spill(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (n > GATHER_MAX)
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    if (!f->buf && !(f->buf = malloc(GATHER_MAX))) /* then nothing is gathered: write now */
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    if (f->len == 0)
        f->at = off;
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return SQLITE_OK;
}

static int gather_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    gather_file_t *f = (gather_file_t *)file;
    int rc = spill(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int gather_sync(sqlite3_file *file, int flags)
{
    gather_file_t *f = (gather_file_t *)file;
    int rc = spill(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int gather_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    gather_file_t *f = (gather_file_t *)file;
    int rc = spill(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int gather_lock(sqlite3_file *file, int level)
{
    gather_file_t *f = (gather_file_t *)file;
    return f->real->pMethods->xLock(f->real, level);
}

static int gather_unlock(sqlite3_file *file, int level)
{
    gather_file_t *f = (gather_file_t *)file;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int gather_check_reserved_lock(sqlite3_file *file, int *out)
{
    gather_file_t *f = (gather_file_t *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int gather_file_control(sqlite3_file *file, int op, void *arg)
{
    gather_file_t *f = (gather_file_t *)file;
    int rc = spill(f);
    if (rc != SQLITE_OK)
        return rc;
    rc = f->real->pMethods->xFileControl(f->real, op, arg);
    if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK && arg) {
        char **name = arg; /* say that this VFS sits on top */
        char *mine = sqlite3_mprintf("%s/%z", gather_vfs.zName, *name);
        if (mine)
            *name = mine;
    }
    return rc;
}

static int gather_sector_size(sqlite3_file *file)
{
    gather_file_t *f = (gather_file_t *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int gather_device_characteristics(sqlite3_file *file)
{
    gather_file_t *f = (gather_file_t *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int gather_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **p)
{
    gather_file_t *f = (gather_file_t *)file;
    return f->real->pMethods->xShmMap(f->real, page, size, extend, p);
}

static int gather_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    gather_file_t *f = (gather_file_t *)file;
    int rc = spill(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void gather_shm_barrier(sqlite3_file *file)
{
    gather_file_t *f = (gather_file_t *)file;
    f->kept_error = spill(f); /* reported by the next call: the checkpoint's sync */
    f->real->pMethods->xShmBarrier(f->real);
}

static int gather_shm_unmap(sqlite3_file *file, int delete_flag)
{
    gather_file_t *f = (gather_file_t *)file;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int gather_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **p)
{
    gather_file_t *f = (gather_file_t *)file;
    int rc = spill(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, p);
}

static int gather_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    gather_file_t *f = (gather_file_t *)file;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods gather_methods = {
    3,
    gather_close,
    gather_read,
    gather_write,
    gather_truncate,
    gather_sync,
    gather_file_size,
    gather_lock,
    gather_unlock,
    gather_check_reserved_lock,
    gather_file_control,
    gather_sector_size,
    gather_device_characteristics,
    gather_shm_map,
    gather_shm_lock,
    gather_shm_barrier,
    gather_shm_unmap,
    gather_fetch,
    gather_unfetch,
};

static int gather_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    (void)vfs;
    gather_file_t *f = (gather_file_t *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = wrapped->xOpen(wrapped, name, f->real, flags, out_flags);
    if (rc == SQLITE_OK && f->real->pMethods->iVersion < 3)
        rc = SQLITE_CANTOPEN; /* a wrapped file without the methods forwarded below */
    if (rc != SQLITE_OK) {
        if (f->real->pMethods) /* a failed open may still want its close */
            f->real->pMethods->xClose(f->real);
        return rc;
    }
    f->gather = (flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_DB)) != 0;
    f->base.pMethods = &gather_methods;
    return SQLITE_OK;
}

static int gather_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return wrapped->xDelete(wrapped, name, sync_dir);
}

static int gather_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return wrapped->xAccess(wrapped, name, flags, out);
}

static int gather_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return wrapped->xFullPathname(wrapped, name, n, out);
}

static void *gather_dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return wrapped->xDlOpen(wrapped, name);
}

static void gather_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    wrapped->xDlError(wrapped, n, msg);
}

static void (*gather_dl_sym(sqlite3_vfs *vfs, void *lib, const char *sym))(void)
{
    (void)vfs;
    return wrapped->xDlSym(wrapped, lib, sym);
}

static void gather_dl_close(sqlite3_vfs *vfs, void *lib)
{
    (void)vfs;
    wrapped->xDlClose(wrapped, lib);
}

static int gather_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return wrapped->xRandomness(wrapped, n, out);
}

static int gather_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return wrapped->xSleep(wrapped, us);
}

static int gather_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return wrapped->xCurrentTime(wrapped, out);
}

static int gather_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return wrapped->xGetLastError ? wrapped->xGetLastError(wrapped, n, out) : 0;
}

static int gather_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return wrapped->xCurrentTimeInt64(wrapped, out);
}

static pthread_once_t register_once = PTHREAD_ONCE_INIT;
static const char *registered_name;

static void register_vfs(void)
{
    wrapped = sqlite3_vfs_find(NULL);
    if (!wrapped || wrapped->iVersion < 2 || !wrapped->xCurrentTimeInt64)
        return;
    gather_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)(sizeof(gather_file_t) + (size_t)wrapped->szOsFile),
        .mxPathname = wrapped->mxPathname,
        .zName = "braid-gather",
        .xOpen = gather_open,
        .xDelete = gather_delete,
        .xAccess = gather_access,
        .xFullPathname = gather_full_pathname,
        .xDlOpen = gather_dl_open,
        .xDlError = gather_dl_error,
        .xDlSym = gather_dl_sym,
        .xDlClose = gather_dl_close,
        .xRandomness = gather_randomness,
        .xSleep = gather_sleep,
        .xCurrentTime = gather_current_time,
        .xGetLastError = gather_get_last_error,
        .xCurrentTimeInt64 = gather_current_time_int64,
    };
    if (sqlite3_vfs_register(&gather_vfs, 0) == SQLITE_OK)
        registered_name = gather_vfs.zName;
}

/* See sqlite_internal.h. */
const char *sq_gather_vfs(void)
{
    pthread_once(&register_once, register_vfs);
    return registered_name;
}
