"""The menus the emulated router serves, one module per RouterOS menu tree.

``base`` holds the generic list-menu behaviour; ``ppp``, ``firewall``, ``files`` and ``system``
the menus themselves. Nothing here imports the router: menus see it as a
:class:`~sonjog.network.routeros.emulator.menus.base.MenuHost`.
"""

from sonjog.network.routeros.emulator.menus.base import Menu, MenuHost, TableMenu, apply_proplist
from sonjog.network.routeros.emulator.menus.files import FileMenu
from sonjog.network.routeros.emulator.menus.firewall import AddressListMenu, FilterMenu, FirewallRuleMenu, NatMenu
from sonjog.network.routeros.emulator.menus.ppp import ActiveMenu, ProfileMenu, SecretMenu
from sonjog.network.routeros.emulator.menus.system import IdentityMenu, ResourceMenu

__all__ = [
    "ActiveMenu",
    "AddressListMenu",
    "FileMenu",
    "FilterMenu",
    "FirewallRuleMenu",
    "IdentityMenu",
    "Menu",
    "MenuHost",
    "NatMenu",
    "ProfileMenu",
    "ResourceMenu",
    "SecretMenu",
    "TableMenu",
    "apply_proplist",
]
