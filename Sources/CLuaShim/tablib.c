/* table.* functions whose C loops are driven by a length or index the script controls (a __len
 * that answers 1e15, table.move(t, 1, 1e15, 2)). They loop in C, where the count hook never fires,
 * so they charge their iterations to the instruction budget before looping. Semantics and error
 * messages follow Lua 5.4. */
#include "internal.h"

#define TAB_R 1
#define TAB_W 2
#define TAB_L 4
#define TAB_RW (TAB_R | TAB_W)

static int has_field(lua_State *L, const char *key, int n) {
    lua_pushstring(L, key);
    return lua_rawget(L, -n) != LUA_TNIL;
}

/* Accepts a table or any value whose metatable provides the needed metamethods. */
static void check_table(lua_State *L, int arg, int what) {
    if (lua_type(L, arg) == LUA_TTABLE) return;
    int n = 1;
    if (lua_getmetatable(L, arg) && (!(what & TAB_R) || has_field(L, "__index", ++n)) &&
        (!(what & TAB_W) || has_field(L, "__newindex", ++n)) &&
        (!(what & TAB_L) || has_field(L, "__len", ++n))) {
        lua_pop(L, n);
    } else {
        luaL_checktype(L, arg, LUA_TTABLE);
    }
}

static lua_Integer length_of(lua_State *L, int arg, int what) {
    check_table(L, arg, what | TAB_L);
    return luaL_len(L, arg);
}

static int tab_insert(lua_State *L) {
    lua_Integer pos;
    lua_Integer e = length_of(L, 1, TAB_RW);
    e = (lua_Integer)((lua_Unsigned)e + 1u); /* first empty element */
    switch (lua_gettop(L)) {
    case 2:
        pos = e;
        break;
    case 3: {
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        picloud_charge(L, e - pos);
        for (lua_Integer i = e; i > pos; i--) {
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    }
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

static int tab_remove(lua_State *L) {
    lua_Integer size = length_of(L, 1, TAB_RW);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
    lua_geti(L, 1, pos);
    if (size > pos) picloud_charge(L, size - pos);
    for (; pos < size; pos++) {
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

static int tab_move(lua_State *L) {
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
    check_table(L, 1, TAB_R);
    check_table(L, tt, TAB_W);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        picloud_charge(L, n);
        if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
            for (lua_Integer i = 0; i < n; i++) {
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        } else {
            for (lua_Integer i = n - 1; i >= 0; i--) {
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        }
    }
    lua_pushvalue(L, tt);
    return 1;
}

/* Calls the original function (upvalue 1) with the same arguments. */
static int call_original(lua_State *L) {
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

static lua_Integer span(lua_Integer i, lua_Integer j) {
    if (i > j) return 0;
    lua_Unsigned n = (lua_Unsigned)j - (lua_Unsigned)i;
    return n >= (lua_Unsigned)LUA_MAXINTEGER ? LUA_MAXINTEGER : (lua_Integer)n + 1;
}

static int tab_concat(lua_State *L) {
    lua_Integer last = lua_isnoneornil(L, 4) ? length_of(L, 1, TAB_R) : luaL_checkinteger(L, 4);
    lua_Integer first = luaL_optinteger(L, 3, 1);
    picloud_charge(L, span(first, last));
    return call_original(L);
}

static int tab_unpack(lua_State *L) {
    lua_Integer first = luaL_optinteger(L, 2, 1);
    lua_Integer last = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
    picloud_charge(L, span(first, last));
    return call_original(L);
}

static int tab_sort(lua_State *L) {
    lua_Integer n = length_of(L, 1, TAB_RW);
    if (n > 1) {
        lua_Integer log2n = 0;
        for (lua_Integer m = n; m > 1; m >>= 1) log2n++;
        picloud_charge(L, n > LUA_MAXINTEGER / (log2n + 1) ? LUA_MAXINTEGER : n * (log2n + 1));
    }
    return call_original(L);
}

void picloud_patch_table(lua_State *L, int t) {
    static const luaL_Reg replaced[] = {
        {"insert", tab_insert}, {"remove", tab_remove}, {"move", tab_move}, {NULL, NULL},
    };
    static const luaL_Reg wrapped[] = {
        {"concat", tab_concat}, {"unpack", tab_unpack}, {"sort", tab_sort}, {NULL, NULL},
    };
    for (const luaL_Reg *r = replaced; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, t, r->name);
    }
    for (const luaL_Reg *r = wrapped; r->name; r++) {
        lua_getfield(L, t, r->name);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, t, r->name);
    }
}
