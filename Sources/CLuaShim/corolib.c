/* coroutine.resume / wrap / close that let host calls suspend from inside a script's coroutines.
 *
 * A host call that suspends yields its own coroutine. When that coroutine was resumed by the
 * script (not by Swift), the yield lands here; instead of handing it to the script as an ordinary
 * yield, we yield our own coroutine too, up to Swift. When Swift resumes with the result, the
 * continuation passes it back down. This is how OpenResty lets ngx.* calls wait inside user
 * coroutines. */
#include "internal.h"

#define FROM_RESUME 0
#define FROM_WRAP 1

static int resume_step(lua_State *L, lua_State *co, int narg, int mode, int continuing);

static int resume_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    int mode = (int)ctx;
    picloud_set_thread_flags(L, picloud_thread_flags(L) & ~PICLOUD_THREAD_HOST_WAIT);
    if (mode == FROM_WRAP) {
        lua_State *co = lua_tothread(L, lua_upvalueindex(1));
        return resume_step(L, co, lua_gettop(L), mode, 1);
    }
    lua_State *co = lua_tothread(L, 1);
    return resume_step(L, co, lua_gettop(L) - 1, mode, 1);
}

/* Moves narg values from L's top into co, resumes it and reports as resume/wrap do. */
static int resume_step(lua_State *L, lua_State *co, int narg, int mode, int continuing) {
    picloud_vm *vm = picloud_vm_of(L);
    int nres;
    if (vm->killed) return picloud_raise_kill(L);
    if (!continuing && (picloud_thread_flags(co) & PICLOUD_THREAD_HOST_WAIT)) {
        lua_pushliteral(L, "cannot resume a coroutine that is waiting for a host call or its turn");
        goto failed;
    }
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        goto failed;
    }
    lua_xmove(L, co, narg);
    /* co continues after waiting: a host call's continuation clears its mark itself, a pause
     * (a yield from the count hook) has no continuation */
    if (continuing) picloud_set_thread_flags(co, picloud_thread_flags(co) & ~PICLOUD_THREAD_HOST_WAIT);
    int chain = vm->chain_yieldable;
    vm->chain_yieldable = chain && lua_isyieldable(L);
    int status = lua_resume(co, L, narg, &nres);
    vm->chain_yieldable = chain;
    if (status == LUA_YIELD && vm->suspend_pending) {
        /* a host call inside co is waiting: wait with it */
        lua_pop(co, nres);
        lua_settop(L, mode == FROM_WRAP ? 0 : 1);
        picloud_set_thread_flags(L, picloud_thread_flags(L) | PICLOUD_THREAD_HOST_WAIT);
        return lua_yieldk(L, 0, (lua_KContext)mode, resume_continue);
    }
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            goto failed;
        }
        if (mode == FROM_RESUME) lua_pushboolean(L, 1);
        lua_xmove(co, L, nres);
        return mode == FROM_RESUME ? nres + 1 : nres;
    }
    if (mode == FROM_WRAP) {
        /* Close its to-be-closed variables, unless the invocation was killed: then co died
         * inside the count hook with hooks off, and its __close handlers could not be stopped. */
        int stat = vm->killed ? status : lua_resetthread(co);
        lua_xmove(co, L, 1);
        if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    lua_xmove(co, L, 1);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;

failed:
    if (mode == FROM_WRAP) return lua_error(L);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

static int co_resume(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    return resume_step(L, co, lua_gettop(L) - 1, FROM_RESUME, 0);
}

static int wrap_call(lua_State *L) {
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    return resume_step(L, co, lua_gettop(L), FROM_WRAP, 0);
}

static int co_wrap(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, wrap_call, 1);
    return 1;
}

/* coroutine.close(co) is refused while co waits for a host call (another invocation's). */
static int co_close(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    if (picloud_vm_of(L)->killed) return picloud_raise_kill(L);
    if (picloud_thread_flags(co) & PICLOUD_THREAD_HOST_WAIT)
        return luaL_error(L, "cannot close a coroutine that is waiting for a host call");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

void picloud_patch_coroutine(lua_State *L, int t) {
    lua_pushcfunction(L, co_resume);
    lua_setfield(L, t, "resume");
    lua_pushcfunction(L, co_wrap);
    lua_setfield(L, t, "wrap");
    lua_getfield(L, t, "close");
    lua_pushcclosure(L, co_close, 1);
    lua_setfield(L, t, "close");
}
