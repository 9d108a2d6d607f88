/* Host-call trampolines: Lua calls C, C calls Swift, and C (never Swift) raises or yields. */
#include "internal.h"

/* Raises the value on the stack top; a string gets the caller's file:line in front. */
static int raise_top(lua_State *L) {
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

/* Runs after Swift resumed a suspended host call. The stack holds what Swift pushed:
 * true, results...  or  false, error. */
static int host_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    picloud_set_thread_flags(L, picloud_thread_flags(L) & ~PICLOUD_THREAD_HOST_WAIT);
    if (!lua_toboolean(L, 1)) {
        lua_settop(L, 2);
        return raise_top(L);
    }
    return lua_gettop(L) - 1;
}

int picloud_host_call(lua_State *L, int id) {
    picloud_vm *vm = picloud_vm_of(L);
    if (vm->closing) return luaL_error(L, "host functions are unavailable while the VM closes");
    if (vm->killed) return picloud_raise_kill(L);
    /* Swift may allocate freely while it pushes values: a refused allocation would raise through
     * its frames. The cap applies again as soon as Lua code runs. */
    int saved = vm->mem_enforce;
    vm->mem_enforce = 0;
    int rc = vm->dispatch(vm->host, L, id);
    vm->mem_enforce = saved;
    if (rc >= 0) return rc;
    if (rc == PICLOUD_HOST_SUSPEND) {
        if (!picloud_can_suspend(L)) /* Swift checks first; this is the last line of defence */
            return luaL_error(L, "a host call cannot wait here");
        vm->suspend_pending = 1;
        picloud_set_thread_flags(L, picloud_thread_flags(L) | PICLOUD_THREAD_HOST_WAIT);
        lua_settop(L, 0);
        return lua_yieldk(L, 0, 0, host_continue);
    }
    return raise_top(L);
}

static int host_trampoline(lua_State *L) {
    return picloud_host_call(L, (int)lua_tointeger(L, lua_upvalueindex(1)));
}

void picloud_push_host_function(lua_State *L, int id) {
    lua_pushinteger(L, id);
    lua_pushcclosure(L, host_trampoline, 1);
}
