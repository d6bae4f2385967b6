@vm
Feature: Servers boot on libvirt/QEMU, show their console, and go away when deleted
  As an operator I need nova to turn a request into a running guest: scheduled, built by
  nova-compute with libvirt and QEMU, its serial console readable, its remote console reachable
  through the noVNC proxy, and gone when deleted.

  Background:
    Given the lab is up

  Scenario: A server boots from the lab's guest image and is deleted
    When a server is created from the lab's guest image
    Then the server is ACTIVE within 240 seconds
    And its console log shows the guest reached userspace within 240 seconds
    When the server is deleted
    Then the server is gone within 120 seconds

  @console
  Scenario: A server's consoles: the serial log and the noVNC websocket
    Given a server from the lab's guest image is ACTIVE
    When the operator asks nova for the server's noVNC console
    Then the console websocket through the proxy completes the RFB handshake
    And the serial console log shows the guest reached userspace
